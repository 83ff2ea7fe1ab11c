//! The blocked-layout operations under autodiff against the NCHW kernels: a convolution with
//! its bias and ReLU, then a 2×2 max pool, in blocks and back, gives the NCHW path's output
//! and the same gradients for the input, the weight and the bias; so do depthwise and 1×1
//! convolutions (a separable convolution).

use burn::tensor::{Device, Tensor, TensorData};
use sepnet_kernels::{
    BlockedTensor, Fused, Geometry, bias_activation, dense_conv2d, depthwise_conv2d, max_pool2d,
};

fn tensor<const D: usize>(n: usize, seed: u32, shape: [usize; D], device: &Device) -> Tensor<D> {
    let v: Vec<f32> = (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 997) as f32 / 500.0 - 1.0
        })
        .collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn assert_close(ours: &[f32], expected: &[f32], what: &str) {
    assert_eq!(ours.len(), expected.len(), "{what}");
    let scale = expected
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1e-3);
    for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
        assert!((a - b).abs() <= 1e-4 * scale, "{what} {i}: {a} vs {b}");
    }
}

#[test]
fn blocked_conv_and_pool_match_the_nchw_kernels_forward_and_backward() {
    let device = Device::flex().autodiff();
    // 20 channels and 11 filters: partial blocks at 8 and 16 lanes; an odd plane under the pool.
    let [n, c, h, w, f] = [2, 20, 7, 7, 11];
    let x = tensor(n * c * h * w, 1, [n, c, h, w], &device).require_grad();
    let weight = tensor(f * c * 9, 2, [f, c, 3, 3], &device).require_grad();
    let bias = tensor(f, 3, [f], &device).require_grad();
    let g = Geometry::new([n, c, h, w], [3, 3], [1, 1], [1, 1], [(1, 1), (1, 1)]);
    let pool = Geometry::new([n, f, h, w], [2, 2], [2, 2], [1, 1], [(0, 0), (0, 0)]);
    let upstream = tensor(n * f * 9, 4, [n, f, 3, 3], &device);

    let blocked = BlockedTensor::from_nchw(x.clone())
        .conv2d(weight.clone(), bias.clone(), g, Fused::Relu)
        .max_pool_2x2()
        .into_nchw();
    let plain = dense_conv2d(x.clone(), weight.clone(), g);
    let plain = max_pool2d(bias_activation(plain, bias.clone(), Fused::Relu), pool);
    assert_close(&to_vec(blocked.clone()), &to_vec(plain.clone()), "output");

    let grads_blocked = (blocked * upstream.clone()).sum().backward();
    let grads_plain = (plain * upstream).sum().backward();
    let grad = |t: &Tensor<4>, g| to_vec(t.grad(g).unwrap());
    assert_close(
        &grad(&x, &grads_blocked),
        &grad(&x, &grads_plain),
        "input gradient",
    );
    assert_close(
        &grad(&weight, &grads_blocked),
        &grad(&weight, &grads_plain),
        "weight gradient",
    );
    let [a, b] = [&grads_blocked, &grads_plain].map(|g| to_vec(bias.grad(g).unwrap()));
    assert_close(&a, &b, "bias gradient");
}

/// A run that starts with the epilogue of the NCHW convolution before it, fused with the
/// conversion (`from_nchw_with`): the same output and gradients as that convolution's bias and
/// activation applied in NCHW.
#[test]
fn an_epilogue_fused_with_the_conversion_matches_the_nchw_kernels() {
    let device = Device::flex().autodiff();
    let [n, c, h, w, f] = [2, 3, 6, 5, 20];
    let x = tensor(n * c * h * w, 5, [n, c, h, w], &device).require_grad();
    let w1 = tensor(f * c * 9, 6, [f, c, 3, 3], &device).require_grad();
    let b1 = tensor(f, 7, [f], &device).require_grad();
    let w2 = tensor(f * f * 9, 8, [f, f, 3, 3], &device).require_grad();
    let b2 = tensor(f, 9, [f], &device).require_grad();
    let g1 = Geometry::new([n, c, h, w], [3, 3], [1, 1], [1, 1], [(1, 1), (1, 1)]);
    let g2 = Geometry::new([n, f, h, w], [3, 3], [1, 1], [1, 1], [(1, 1), (1, 1)]);
    let upstream = tensor(n * f * h * w, 10, [n, f, h, w], &device);

    // Each path from its own first convolution: one backward pass consumes a graph.
    let first = || dense_conv2d(x.clone(), w1.clone(), g1);
    let blocked = BlockedTensor::from_nchw_with(first(), b1.clone(), Fused::Relu6)
        .conv2d(w2.clone(), b2.clone(), g2, Fused::Relu)
        .into_nchw();
    let plain = bias_activation(first(), b1.clone(), Fused::Relu6);
    let plain = bias_activation(dense_conv2d(plain, w2.clone(), g2), b2.clone(), Fused::Relu);
    assert_close(&to_vec(blocked.clone()), &to_vec(plain.clone()), "output");

    let grads = [blocked, plain].map(|y| (y * upstream.clone()).sum().backward());
    let grad = |t: &Tensor<4>| grads.each_ref().map(|g| to_vec(t.grad(g).unwrap()));
    for (t, what) in [(&x, "input"), (&w1, "first weight"), (&w2, "second weight")] {
        let [a, b] = grad(t);
        assert_close(&a, &b, &format!("{what} gradient"));
    }
    for (t, what) in [(&b1, "first bias"), (&b2, "second bias")] {
        let [a, b] = grads.each_ref().map(|g| to_vec(t.grad(g).unwrap()));
        assert_close(&a, &b, &format!("{what} gradient"));
    }
}

/// Depthwise convolutions (stride 2 with Keras's asymmetric `same` padding, then stride 1),
/// each followed by a 1×1 convolution with its bias and activation, as a separable
/// convolution runs in blocks.
#[test]
fn blocked_depthwise_and_pointwise_match_the_nchw_kernels() {
    let device = Device::flex().autodiff();
    let [n, c, h, w, f] = [2, 20, 8, 8, 24];
    let x = tensor(n * c * h * w, 11, [n, c, h, w], &device).require_grad();
    let dw1 = tensor(c * 9, 12, [c, 1, 3, 3], &device).require_grad();
    let pw1 = tensor(f * c, 13, [f, c, 1, 1], &device).require_grad();
    let b1 = tensor(f, 14, [f], &device).require_grad();
    let dw2 = tensor(f * 9, 15, [f, 1, 3, 3], &device).require_grad();
    let pw2 = tensor(c * f, 16, [c, f, 1, 1], &device).require_grad();
    let b2 = tensor(c, 17, [c], &device).require_grad();
    let d1 = Geometry::new([n, c, h, w], [3, 3], [2, 2], [1, 1], [(0, 1), (0, 1)]);
    let p1 = Geometry::new([n, c, 4, 4], [1, 1], [1, 1], [1, 1], [(0, 0), (0, 0)]);
    let d2 = Geometry::new([n, f, 4, 4], [3, 3], [1, 1], [1, 1], [(1, 1), (1, 1)]);
    let p2 = Geometry::new([n, f, 4, 4], [1, 1], [1, 1], [1, 1], [(0, 0), (0, 0)]);
    let upstream = tensor(n * c * 16, 18, [n, c, 4, 4], &device);

    let blocked = BlockedTensor::from_nchw(x.clone())
        .depthwise(dw1.clone(), d1)
        .conv2d(pw1.clone(), b1.clone(), p1, Fused::Relu)
        .depthwise(dw2.clone(), d2)
        .conv2d(pw2.clone(), b2.clone(), p2, Fused::Relu6)
        .into_nchw();
    let plain = depthwise_conv2d(x.clone(), dw1.clone(), d1);
    let plain = bias_activation(
        dense_conv2d(plain, pw1.clone(), p1),
        b1.clone(),
        Fused::Relu,
    );
    let plain = depthwise_conv2d(plain, dw2.clone(), d2);
    let plain = bias_activation(
        dense_conv2d(plain, pw2.clone(), p2),
        b2.clone(),
        Fused::Relu6,
    );
    assert_close(&to_vec(blocked.clone()), &to_vec(plain.clone()), "output");

    let grads = [blocked, plain].map(|y| (y * upstream.clone()).sum().backward());
    let weights = [(&dw1, "first depthwise"), (&pw1, "first pointwise")];
    let weights = weights
        .into_iter()
        .chain([(&dw2, "second depthwise"), (&pw2, "second pointwise")]);
    for (t, what) in [(&x, "input")].into_iter().chain(weights) {
        let [a, b] = grads.each_ref().map(|g| to_vec(t.grad(g).unwrap()));
        assert_close(&a, &b, &format!("{what} gradient"));
    }
    for (t, what) in [(&b1, "first bias"), (&b2, "second bias")] {
        let [a, b] = grads.each_ref().map(|g| to_vec(t.grad(g).unwrap()));
        assert_close(&a, &b, &format!("{what} gradient"));
    }
}
