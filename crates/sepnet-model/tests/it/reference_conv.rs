//! Full, depthwise and separable convolutions and max pooling against a naive loop
//! implementation written here: forward outputs and gradients (input and weights), for stride
//! 1 and 2, odd and even sizes, depth multiplier 1 and 2, `same` and `valid` padding. On the
//! CPU these layers run sepnet's own kernels (`sepnet_model::kernels`), so this is also their
//! end-to-end test through burn's autodiff.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use sepnet_model::Padding;
use sepnet_model::layers::{
    Conv2dConfig, DepthwiseConv2dConfig, Pool2dConfig, PoolKind, SeparableConv2dConfig,
};

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A dense NCHW array with naive grouped convolution, forward and backward.
struct Conv {
    c_in: usize,
    c_out: usize,
    groups: usize,
    k: [usize; 2],
    stride: usize,
    pads: [(usize, usize); 2],
}

impl Conv {
    fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        let oh = (h + self.pads[0].0 + self.pads[0].1 - self.k[0]) / self.stride + 1;
        let ow = (w + self.pads[1].0 + self.pads[1].1 - self.k[1]) / self.stride + 1;
        (oh, ow)
    }

    /// Calls `f(n, o, ci, y, x_row, x_col, weight_index)` for every multiply of the convolution.
    fn each(
        &self,
        n_batch: usize,
        h: usize,
        w: usize,
        mut f: impl FnMut(usize, usize, usize, usize, usize, usize),
    ) {
        let (oh, ow) = self.out_size(h, w);
        let (cin_g, cout_g) = (self.c_in / self.groups, self.c_out / self.groups);
        for n in 0..n_batch {
            for o in 0..self.c_out {
                let g = o / cout_g;
                for ci in 0..cin_g {
                    let c = g * cin_g + ci;
                    for i in 0..oh {
                        for j in 0..ow {
                            for ki in 0..self.k[0] {
                                for kj in 0..self.k[1] {
                                    let r =
                                        (i * self.stride + ki) as isize - self.pads[0].0 as isize;
                                    let s =
                                        (j * self.stride + kj) as isize - self.pads[1].0 as isize;
                                    if r < 0 || s < 0 || r >= h as isize || s >= w as isize {
                                        continue;
                                    }
                                    let x = ((n * self.c_in + c) * h + r as usize) * w + s as usize;
                                    let y = ((n * self.c_out + o) * oh + i) * ow + j;
                                    let wi = ((o * cin_g + ci) * self.k[0] + ki) * self.k[1] + kj;
                                    f(x, y, wi, 0, 0, 0);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn forward(&self, x: &[f32], weight: &[f32], n: usize, h: usize, w: usize) -> Vec<f32> {
        let (oh, ow) = self.out_size(h, w);
        let mut y = vec![0.0f64; n * self.c_out * oh * ow];
        self.each(n, h, w, |xi, yi, wi, _, _, _| {
            y[yi] += x[xi] as f64 * weight[wi] as f64
        });
        y.into_iter().map(|v| v as f32).collect()
    }

    /// Gradients of `sum(y · dy)` with respect to x and the weights.
    fn backward(
        &self,
        x: &[f32],
        weight: &[f32],
        dy: &[f32],
        n: usize,
        h: usize,
        w: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; weight.len()];
        self.each(n, h, w, |xi, yi, wi, _, _, _| {
            dx[xi] += dy[yi] as f64 * weight[wi] as f64;
            dw[wi] += dy[yi] as f64 * x[xi] as f64;
        });
        let f = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
        (f(dx), f(dw))
    }
}

fn assert_close(ours: &[f32], reference: &[f32], what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "{what}[{i}]: burn {a} vs reference {b}"
        );
    }
}

fn tensor4(data: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// (channels, size, stride, multiplier, padding)
fn cases() -> Vec<(usize, usize, usize, usize, Padding)> {
    let mut cases = Vec::new();
    for size in [7, 8] {
        for stride in [1, 2] {
            for multiplier in [1, 2] {
                for padding in [Padding::Same, Padding::Valid] {
                    cases.push((3, size, stride, multiplier, padding));
                }
            }
        }
    }
    cases
}

/// One 3×3 convolution layer (its kernel already set to `w`) against `naive`: the output and
/// the gradients for the input and the kernel of `L = Σ y · dy`, with `x` from `x_seed` and
/// `dy` from `x_seed + 1`.
#[allow(clippy::too_many_arguments)]
fn check_conv_layer(
    what: &str,
    naive: &Conv,
    forward: impl Fn(Tensor<4>) -> Tensor<4>,
    kernel: &Param<Tensor<4>>,
    w: &[f32],
    [n, size]: [usize; 2],
    x_seed: u64,
    device: &Device,
) {
    let x = values(n * naive.c_in * size * size, x_seed);
    let xt = tensor4(x.clone(), [n, naive.c_in, size, size], device).require_grad();
    let y = forward(xt.clone());
    let expected = naive.forward(&x, w, n, size, size);
    let dy = values(expected.len(), x_seed + 1);
    let dims = y.dims();
    let grads = (y.clone() * tensor4(dy.clone(), dims, device))
        .sum()
        .backward();
    assert_close(&to_vec(y), &expected, &format!("{what} forward"));
    let (dx, dw) = naive.backward(&x, w, &dy, n, size, size);
    assert_close(
        &to_vec(xt.grad(&grads).unwrap()),
        &dx,
        &format!("{what} dx"),
    );
    let dw_ours = to_vec(kernel.val().grad(&grads).unwrap());
    assert_close(&dw_ours, &dw, &format!("{what} dw"));
}

#[test]
fn depthwise_forward_and_gradients_match_naive_loops() {
    let device = Device::flex().autodiff();
    for (c, size, stride, m, padding) in cases() {
        let what = format!("dw c{c} {size}x{size} s{stride} m{m} {padding:?}");
        let mut layer = DepthwiseConv2dConfig::new(c, [3, 3])
            .with_depth_multiplier(m)
            .with_stride([stride; 2])
            .with_padding(padding)
            .init(&device);
        let w = values(c * m * 9, 1);
        layer.weight = Param::from_tensor(tensor4(w.clone(), [c * m, 1, 3, 3], &device));
        let naive = Conv {
            c_in: c,
            c_out: c * m,
            groups: c,
            k: [3, 3],
            stride,
            pads: padding.pads_2d([size, size], [3, 3], [stride; 2], [1, 1]),
        };
        let forward = |x| layer.forward(x);
        check_conv_layer(
            &what,
            &naive,
            forward,
            &layer.weight,
            &w,
            [2, size],
            2,
            &device,
        );
    }
}

#[test]
fn separable_forward_and_gradients_match_naive_loops() {
    let device = Device::flex().autodiff();
    let (n, filters) = (2, 5);
    for (c, size, stride, m, padding) in cases() {
        let what = format!("sep c{c} {size}x{size} s{stride} m{m} {padding:?}");
        let mut layer = SeparableConv2dConfig::new(c, filters, [3, 3])
            .with_depth_multiplier(m)
            .with_stride([stride; 2])
            .with_padding(padding)
            .with_bias(false)
            .init(&device);
        let w_dw = values(c * m * 9, 4);
        let w_pw = values(filters * c * m, 5);
        layer.conv_dw.weight = Param::from_tensor(tensor4(w_dw.clone(), [c * m, 1, 3, 3], &device));
        layer.conv_pw.weight =
            Param::from_tensor(tensor4(w_pw.clone(), [filters, c * m, 1, 1], &device));
        let x = values(n * c * size * size, 6);
        let xt = tensor4(x.clone(), [n, c, size, size], &device).require_grad();
        let y = layer.forward(xt.clone());

        let pads = padding.pads_2d([size, size], [3, 3], [stride; 2], [1, 1]);
        let dw = Conv {
            c_in: c,
            c_out: c * m,
            groups: c,
            k: [3, 3],
            stride,
            pads,
        };
        let (oh, ow) = dw.out_size(size, size);
        let pw = Conv {
            c_in: c * m,
            c_out: filters,
            groups: 1,
            k: [1, 1],
            stride: 1,
            pads: [(0, 0); 2],
        };
        let mid = dw.forward(&x, &w_dw, n, size, size);
        let expected = pw.forward(&mid, &w_pw, n, oh, ow);
        let dy = values(expected.len(), 7);
        let loss = (y.clone() * tensor4(dy.clone(), y.dims(), &device)).sum();
        let grads = loss.backward();
        assert_close(&to_vec(y), &expected, &format!("{what} forward"));
        let (d_mid, d_wpw) = pw.backward(&mid, &w_pw, &dy, n, oh, ow);
        let (dx, d_wdw) = dw.backward(&x, &w_dw, &d_mid, n, size, size);
        assert_close(
            &to_vec(xt.grad(&grads).unwrap()),
            &dx,
            &format!("{what} dx"),
        );
        assert_close(
            &to_vec(layer.conv_pw.weight.val().grad(&grads).unwrap()),
            &d_wpw,
            &format!("{what} d w_pw"),
        );
        assert_close(
            &to_vec(layer.conv_dw.weight.val().grad(&grads).unwrap()),
            &d_wdw,
            &format!("{what} d w_dw"),
        );
    }
}

#[test]
fn depthwise_bias_is_added_per_output_channel() {
    let device = Device::flex();
    let mut layer = DepthwiseConv2dConfig::new(2, [1, 1])
        .with_depth_multiplier(2)
        .with_bias(true)
        .init(&device);
    layer.weight = Param::from_tensor(tensor4(vec![0.0; 4], [4, 1, 1, 1], &device));
    layer.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [4]),
        &device,
    )));
    let y = to_vec(layer.forward(Tensor::ones([1, 2, 2, 2], &device)));
    assert_eq!(
        y,
        vec![
            1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 4.0, 4.0, 4.0, 4.0
        ]
    );
}

#[test]
fn full_conv_forward_and_gradients_match_naive_loops() {
    let device = Device::flex().autodiff();
    for (c, size, stride, filters, padding) in cases() {
        let what = format!("conv c{c} {size}x{size} s{stride} f{filters} {padding:?}");
        let mut layer = Conv2dConfig::new(c, filters, [3, 3])
            .with_stride([stride; 2])
            .with_padding(padding)
            .with_bias(false)
            .init(&device);
        let w = values(filters * c * 9, 4);
        layer.weight = Param::from_tensor(tensor4(w.clone(), [filters, c, 3, 3], &device));
        let naive = Conv {
            c_in: c,
            c_out: filters,
            groups: 1,
            k: [3, 3],
            stride,
            pads: padding.pads_2d([size, size], [3, 3], [stride; 2], [1, 1]),
        };
        let forward = |x| layer.forward(x);
        check_conv_layer(
            &what,
            &naive,
            forward,
            &layer.weight,
            &w,
            [3, size],
            5,
            &device,
        );
    }
}

/// Max pooling 2×2/2 (valid, even and odd sizes: the last row and column of an odd plane
/// get no gradient), 3×3/2 (TensorFlow `same`, asymmetric) and 3×3/1 (overlapping
/// windows): the maximum forward, and the gradient routed to the first maximum of each window.
#[test]
fn max_pool_forward_and_gradient_match_naive_loops() {
    let device = Device::flex().autodiff();
    let (n, c) = (2, 3);
    for (size, k, stride, padding) in [
        (8, 2, 2, Padding::Valid),
        (7, 2, 2, Padding::Valid),
        (37, 2, 2, Padding::Valid),
        (7, 3, 2, Padding::Same),
        (6, 3, 1, Padding::Same),
    ] {
        let what = format!("maxpool {size}x{size} k{k} s{stride} {padding:?}");
        let layer = Pool2dConfig::new(PoolKind::Max, [k, k])
            .with_stride(Some([stride, stride]))
            .with_padding(padding)
            .init(&device);
        // Few distinct values, so windows hold ties and the first maximum must win.
        let x: Vec<f32> = values(n * c * size * size, 7)
            .iter()
            .map(|v| (v * 3.0).round())
            .collect();
        let xt = tensor4(x.clone(), [n, c, size, size], &device).require_grad();
        let y = layer.forward(xt.clone());
        let [_, _, oh, ow] = y.dims();
        let [(top, _), (left, _)] = padding.pads_2d([size, size], [k, k], [stride; 2], [1, 1]);
        let dy = values(n * c * oh * ow, 8);
        let (mut expected, mut dx) = (vec![0.0; dy.len()], vec![0.0; x.len()]);
        for plane in 0..n * c {
            for i in 0..oh {
                for j in 0..ow {
                    let mut best: Option<(f32, usize)> = None;
                    for ki in 0..k {
                        for kj in 0..k {
                            let r = (i * stride + ki) as isize - top as isize;
                            let s = (j * stride + kj) as isize - left as isize;
                            if r < 0 || s < 0 || r >= size as isize || s >= size as isize {
                                continue;
                            }
                            let at = (plane * size + r as usize) * size + s as usize;
                            if best.is_none_or(|(v, _)| x[at] > v) {
                                best = Some((x[at], at));
                            }
                        }
                    }
                    let (v, at) = best.expect("every window covers the image");
                    let o = (plane * oh + i) * ow + j;
                    expected[o] = v;
                    dx[at] += dy[o];
                }
            }
        }
        let grads = (y.clone() * tensor4(dy, [n, c, oh, ow], &device))
            .sum()
            .backward();
        assert_close(&to_vec(y), &expected, &format!("{what} forward"));
        assert_close(
            &to_vec(xt.grad(&grads).unwrap()),
            &dx,
            &format!("{what} dx"),
        );
    }
}
