//! The GPU backend (wgpu) against the CPU one (flex), layer kind by layer kind in awkward
//! shapes: the same weights and images, a training-mode forward (BatchNorm on batch
//! statistics), and the gradients of the input and of every parameter. Whatever computes a
//! layer on the GPU — burn's kernels or sepnet's own — must agree with the CPU, which the
//! naive-loop references of `reference_conv.rs` hold to the definitions.
//!
//! Built with `--features wgpu`; it needs a Vulkan (or Metal/DX12) device. Without a GPU,
//! Debian's `mesa-vulkan-drivers` (lavapipe) provides one on the CPU, which is how CI runs it.
//! `CUBECL_AUTOTUNE_LEVEL=minimal` keeps lavapipe from benchmarking every candidate kernel.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use sepnet_model::Network;
use sepnet_model::spec::NetworkSpec;

/// Every trainable layer kind (dropout aside: its masks are random per device), in shapes a
/// GPU kernel's tiling gets wrong first: channels that are not a multiple of anything, odd
/// planes, stride 2 with Keras's asymmetric `same` padding, dilation, depth multipliers, a
/// batch of 3.
const SPECS: &[(&str, [usize; 3])] = &[
    ("conv:5:3:s=2,bn,relu,maxpool:2,flatten,dense:7", [11, 9, 3]),
    (
        "conv:6:3:d=2:nobias,bn,relu6,dw:3:m=2:bias,avgpool:2:same,gap,dense:4",
        [12, 10, 2],
    ),
    ("sep:9:3:s=2:relu,dwsep:12:s=2,gap,dense:3", [13, 13, 3]),
    (
        "conv:8:1,bn,relu,ir:8:e=3,ir:12:s=2:e=2,gap,dense:5",
        [9, 9, 3],
    ),
    (
        "dw:5:s=2:bias,conv:7:5,bn,hardswish,se:4,gap,dense:2",
        [15, 15, 1],
    ),
];

const BATCH: usize = 3;

/// Deterministic values in [−1.5, 2.5).
fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 250.0 - 1.5
        })
        .collect()
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Every parameter's gradient, in the module's order.
struct ParamGrads<'a> {
    grads: &'a Gradients,
    found: Vec<Vec<f32>>,
}

impl ModuleVisitor for ParamGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = param.val().grad(self.grads) {
            self.found.push(to_vec(grad));
        }
    }
}

/// The output, the input's gradient and the parameters' gradients of `network` on `device`
/// for `images`, under the loss `Σ output · weights`.
fn pass(network: &Network, device: &Device, images: &TensorData, seed: u32) -> Vec<Vec<f32>> {
    let network = network.clone().fork(device);
    let x = Tensor::<4>::from_data(images.clone(), device).require_grad();
    let y = network.forward(x.clone());
    let dims = y.dims();
    let upstream = Tensor::<2>::from_data(
        TensorData::new(values(dims[0] * dims[1], seed), dims),
        device,
    );
    let grads = (y.clone() * upstream).sum().backward();
    let mut params = ParamGrads {
        grads: &grads,
        found: Vec::new(),
    };
    network.visit(&mut params);
    let mut all = vec![
        to_vec(y),
        to_vec(x.grad(&grads).expect("the input has a gradient")),
    ];
    all.extend(params.found);
    all
}

/// `|gpu − cpu| ≤ 2·10⁻³ · max |cpu| + 10⁻⁵` element-wise (float sums in another order).
fn assert_close(gpu: &[f32], cpu: &[f32], what: &str) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        assert!(
            (g - c).abs() <= 2e-3 * scale + 1e-5,
            "{what}[{i}]: GPU {g}, CPU {c} (largest |CPU| {scale})"
        );
    }
}

#[test]
fn every_layer_kind_trains_on_the_gpu_as_on_the_cpu() {
    let _rng = crate::rng_lock();
    let cpu = Device::flex().autodiff();
    let gpu = Device::wgpu(Default::default()).autodiff();
    for (k, &(text, input @ [h, w, c])) in SPECS.iter().enumerate() {
        let spec = NetworkSpec::parse(text, input).unwrap();
        let network = Network::new(&spec, &cpu).unwrap();
        let images = TensorData::new(values(BATCH * c * h * w, k as u32), [BATCH, c, h, w]);
        let on_cpu = pass(&network, &cpu, &images, 7);
        let on_gpu = pass(&network, &gpu, &images, 7);
        assert_eq!(on_gpu.len(), on_cpu.len(), "{text}: gradients found");
        let names = ["output", "input gradient"].into_iter().map(String::from);
        let names = names.chain((0..).map(|p| format!("gradient of parameter {p}")));
        for ((g, c), name) in on_gpu.iter().zip(&on_cpu).zip(names) {
            assert_close(g, c, &format!("{text}: {name}"));
        }
    }
}

/// The gradients under the loss `Σ y · upstream`, the upstream values fixed.
fn backward_from(y: &Tensor<4>) -> Gradients {
    let n = y.dims().iter().product();
    let upstream = Tensor::<4>::from_data(TensorData::new(values(n, 3), y.dims()), &y.device());
    (y.clone() * upstream).sum().backward()
}

/// A full-convolution case: `[batch, c, h, w]`, filters, kernel, stride, dilation, pads
/// `[top, bottom, left, right]`.
type TiledCase = (
    [usize; 4],
    usize,
    [usize; 2],
    [usize; 2],
    [usize; 2],
    [usize; 4],
);

/// The output and the gradients of input and weights of case `k` on `device`: sepnet's tiled
/// GPU kernel (`ours`), or burn's `conv2d`.
fn tiled_pass(k: usize, case: TiledCase, device: &Device, ours: bool) -> [Vec<f32>; 3] {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use sepnet_model::kernels::{Geometry, gpu};
    let (input, filters, kernel, stride, dilation, pads) = case;
    let [top, bottom, left, right] = pads;
    let pairs = [(top, bottom), (left, right)];
    let weight_dims = [filters, input[1], kernel[0], kernel[1]];
    let images = TensorData::new(values(input.iter().product(), k as u32), input);
    let weights = TensorData::new(values(weight_dims.iter().product(), 99), weight_dims);
    let x = Tensor::<4>::from_data(images, device).require_grad();
    let w = Tensor::<4>::from_data(weights, device).require_grad();
    let y = if ours {
        let geometry = Geometry::new(input, kernel, stride, dilation, pairs);
        assert!(gpu::fits(&geometry));
        gpu::dense_conv2d(x.clone(), w.clone(), geometry)
    } else {
        let options = ConvOptions::new_with_padding(stride, pairs, dilation, 1);
        conv2d(x.clone(), w.clone(), None, options)
    };
    let grads = backward_from(&y);
    let grad = |t: &Tensor<4>| to_vec(t.grad(&grads).unwrap());
    [to_vec(y.clone()), grad(&x), grad(&w)]
}

/// sepnet's tiled GPU convolution alone, forward and both gradients, against flex, in shapes
/// that straddle its tiles: 64 output pixels and 64 filters per cube, 16 window values per
/// step.
#[test]
fn the_tiled_convolution_matches_the_cpu_across_tile_edges() {
    let cases: &[TiledCase] = &[
        ([3, 5, 11, 9], 70, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
        ([2, 17, 8, 8], 64, [1, 1], [1, 1], [1, 1], [0, 0, 0, 0]),
        ([1, 3, 13, 10], 9, [5, 3], [2, 2], [1, 1], [1, 2, 0, 1]),
        ([2, 4, 12, 12], 130, [3, 3], [1, 2], [2, 1], [2, 2, 1, 1]),
    ];
    let cpu = Device::flex().autodiff();
    let gpu = Device::wgpu(Default::default()).autodiff();
    for (k, &case) in cases.iter().enumerate() {
        let on_gpu = tiled_pass(k, case, &gpu, true);
        let on_cpu = tiled_pass(k, case, &cpu, false);
        for ((g, c), name) in on_gpu.iter().zip(&on_cpu).zip(["output", "dx", "dw"]) {
            let (input, filters, ..) = case;
            assert_close(g, c, &format!("case {k} {input:?}×{filters}: {name}"));
        }
    }
}

/// A depthwise case: `[batch, c, h, w]`, multiplier, kernel, stride, dilation, pads `[top,
/// bottom, left, right]`, activation.
type DepthwiseCase = (
    [usize; 4],
    usize,
    [usize; 2],
    [usize; 2],
    [usize; 2],
    [usize; 4],
    sepnet_model::Activation,
);

/// The output and the gradients of input, weights and bias of case `k` on `device`: sepnet's
/// depthwise GPU kernel (`ours`), or burn's grouped `conv2d`, bias add and activation.
fn depthwise_pass(k: usize, case: DepthwiseCase, device: &Device, ours: bool) -> [Vec<f32>; 4] {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use sepnet_model::kernels::{Geometry, gpu};
    let (input, multiplier, kernel, stride, dilation, pads, act) = case;
    let [top, bottom, left, right] = pads;
    let pairs = [(top, bottom), (left, right)];
    let filters = input[1] * multiplier;
    let weight_dims = [filters, 1, kernel[0], kernel[1]];
    let images = TensorData::new(values(input.iter().product(), k as u32), input);
    let weights = TensorData::new(values(weight_dims.iter().product(), 99), weight_dims);
    let x = Tensor::<4>::from_data(images, device).require_grad();
    let w = Tensor::<4>::from_data(weights, device).require_grad();
    let b = Tensor::<1>::from_data(TensorData::new(values(filters, 5), [filters]), device)
        .require_grad();
    let y = if ours {
        let geometry = Geometry {
            multiplier,
            ..Geometry::new(input, kernel, stride, dilation, pairs)
        };
        let (fused, after) = act.split();
        after.apply(gpu::depthwise_bias_act(
            x.clone(),
            w.clone(),
            b.clone(),
            geometry,
            fused,
        ))
    } else {
        let options = ConvOptions::new_with_padding(stride, pairs, dilation, input[1]);
        act.apply(conv2d(x.clone(), w.clone(), Some(b.clone()), options))
    };
    let grads = backward_from(&y);
    let grad = |t: &Tensor<4>| to_vec(t.grad(&grads).unwrap());
    [
        to_vec(y.clone()),
        grad(&x),
        grad(&w),
        to_vec(b.grad(&grads).unwrap()),
    ]
}

/// sepnet's depthwise GPU kernel with its bias and activation, forward and the gradients of
/// input, weights and bias, against flex: every fused activation, a smooth one after the
/// kernel, a depth multiplier, stride 2 with asymmetric padding, dilation, a plane wider than
/// a cube of threads.
#[test]
fn the_depthwise_kernel_with_bias_and_activation_matches_the_cpu() {
    use sepnet_model::Activation;
    // One case a line, as the table reads (rustfmt would spread each over nine).
    #[rustfmt::skip]
    let cases: &[DepthwiseCase] = &[
        ([3, 5, 11, 9], 2, [3, 3], [2, 2], [1, 1], [0, 1, 0, 1], Activation::Relu6),
        ([2, 4, 10, 13], 1, [5, 5], [1, 1], [2, 2], [4, 4, 4, 4], Activation::Relu),
        ([1, 1, 7, 300], 3, [3, 3], [1, 2], [1, 1], [1, 1, 1, 1], Activation::Linear),
        ([2, 3, 6, 6], 1, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], Activation::Hardswish),
    ];
    let cpu = Device::flex().autodiff();
    let gpu = Device::wgpu(Default::default()).autodiff();
    for (k, &case) in cases.iter().enumerate() {
        let on_gpu = depthwise_pass(k, case, &gpu, true);
        let on_cpu = depthwise_pass(k, case, &cpu, false);
        for ((g, c), name) in on_gpu.iter().zip(&on_cpu).zip(["output", "dx", "dw", "db"]) {
            let (input, multiplier, .., act) = case;
            assert_close(
                g,
                c,
                &format!("case {k} {input:?}×{multiplier} {act:?}: {name}"),
            );
        }
    }
}
