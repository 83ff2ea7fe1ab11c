//! The lowered program against the network it came from, the int8 arithmetic against plain
//! integer loops, and the per-tensor failure the whitepaper describes.

use burn::module::{Param, RunningState};
use burn::tensor::{Device, Distribution, Tensor};

use super::*;
use sepnet_model::export::graph;
use sepnet_model::layers::BatchNorm;
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Layer, Network};

/// Every layer kind with an int8 form, in awkward geometries.
const SPECS: &[(&str, [usize; 3])] = &[
    (
        "conv:6:3:s=2:nobias,bn,relu,pool,flatten,dense:16:relu,dropout:0.5,dense:5",
        [13, 11, 2],
    ),
    (
        "conv:4:3:d=2,bn,relu6,dw:3:m=2:d=2:bias,bn,relu,avgpool:2:same,gap,dense:4",
        [12, 12, 3],
    ),
    (
        "sep:8:3:s=2:relu,dwsep:12,maxpool:3:s=2:same,relu6,flatten,dense:3",
        [15, 15, 2],
    ),
    (
        "conv:8:1,ir:8:e=3,ir:12:s=2:e=2,ir:12,gap,dense:6",
        [9, 9, 3],
    ),
    ("dw:7:s=3:bias,conv:5:5:s=2,bn,gap,dense:2", [8, 8, 1]),
    (
        "conv:8:3:s=2,bn,hardswish,se:4:gate=hardsigmoid,bneck:12:24:3:se=0.25:hardswish,\
         mbconv:12:3:e=2:se=0.25,sigmoid,tanh,gap,dense:5",
        [10, 10, 3],
    ),
];

/// Holds the process-wide flex RNG, seeded, for one test: tests run in parallel threads, and
/// a test that draws weights or images while another draws would see neither's numbers.
fn seeded(seed: u64) -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Device::flex().seed(seed);
    guard
}

fn random(n: usize, low: f64, high: f64, device: &Device) -> Tensor<1> {
    Tensor::random([n], Distribution::Uniform(low, high), device)
}

/// Sets a BatchNorm's statistics and parameters to something other than its defaults, its
/// scales spread over `gamma`.
fn randomise(bn: &mut BatchNorm, gamma: (f64, f64), device: &Device) {
    let n = bn.inner.gamma.dims()[0];
    bn.inner.gamma = Param::from_tensor(random(n, gamma.0, gamma.1, device));
    bn.inner.beta = Param::from_tensor(random(n, -0.5, 0.5, device));
    bn.inner.running_mean = RunningState::new(random(n, -0.3, 0.3, device));
    bn.inner.running_var = RunningState::new(random(n, 0.5, 2.0, device));
}

fn network(text: &str, input: [usize; 3], gamma: (f64, f64)) -> (NetworkSpec, Network) {
    let device = Device::flex();
    let spec = NetworkSpec::parse(text, input).unwrap();
    let mut network = Network::new(&spec, &device).unwrap();
    for layer in &mut network.layers {
        let mut bns: Vec<&mut BatchNorm> = match layer {
            Layer::BatchNorm(bn) => vec![bn],
            Layer::DwSep(block) => vec![&mut block.bn_dw, &mut block.bn_pw],
            Layer::InvertedResidual(block) => {
                let mut bns = vec![&mut block.bn_dw, &mut block.bn_project];
                bns.extend(block.expand.as_mut().map(|(_, bn)| bn));
                bns
            }
            _ => vec![],
        };
        bns.iter_mut().for_each(|bn| randomise(bn, gamma, &device));
    }
    (spec, network)
}

fn images(n: usize, [h, w, c]: [usize; 3]) -> Vec<f32> {
    Tensor::<1>::random(
        [n * h * w * c],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    )
    .into_data()
    .try_to_vec()
    .unwrap()
}

fn logits(network: &Network, images: &[f32], n: usize, [h, w, c]: [usize; 3]) -> Vec<f32> {
    let device = Device::flex();
    let x = Tensor::<1>::from_floats(images, &device).reshape([n, c, h, w]);
    network.forward(x).into_data().try_to_vec().unwrap()
}

fn lower(spec: &NetworkSpec, network: &Network) -> Program {
    let [h, w, c] = spec.input;
    Program::lower(&graph(spec, network).unwrap(), [c, h, w]).unwrap()
}

fn scheme(granularity: Granularity) -> Scheme {
    Scheme {
        granularity,
        reduce_range: false,
    }
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn the_folded_program_computes_what_the_network_does() {
    let _rng = seeded(0);
    for &(text, input) in SPECS {
        let (spec, network) = network(text, input, (0.5, 1.5));
        let program = lower(&spec, &network);
        assert!(
            program
                .ops
                .iter()
                .all(|op| op.node.op != "BatchNormalization"),
            "{text}"
        );
        let x = images(5, input);
        let want = logits(&network, &x, 5, input);
        let got = forward(&program, &x, 5, |_, _| {});
        let error = max_difference(&got, &want) / max_abs(&want);
        assert!(error < 1e-4, "{text}: relative difference {error}");
    }
}

/// `conv(x)` of one image in plain nested loops, int32 (the reference beside the shifted-rows
/// path).
fn naive_conv(conv: &Conv, q: &QWeights, x: &[i8], zero: i8, [c, h, w]: [usize; 3]) -> Vec<i32> {
    let Window {
        kernel: [kh, kw],
        stride,
        dilation,
        pads,
    } = conv.window;
    let [oh, ow] = conv.window.output([h, w]);
    let (per_group_in, per_group_out) = (c / conv.group, conv.out / conv.group);
    let mut out = vec![0; conv.out * oh * ow];
    for o in 0..conv.out {
        for (oy, ox) in (0..oh).flat_map(|y| (0..ow).map(move |x| (y, x))) {
            let mut acc = q.bias[o];
            for i in 0..per_group_in {
                let ci = (o / per_group_out) * per_group_in + i;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let y = (oy * stride[0] + ky * dilation[0]) as isize - pads[0] as isize;
                        let xx = (ox * stride[1] + kx * dilation[1]) as isize - pads[1] as isize;
                        let inside = (0..h as isize).contains(&y) && (0..w as isize).contains(&xx);
                        let v = if inside {
                            x[ci * h * w + y as usize * w + xx as usize]
                        } else {
                            zero
                        };
                        let k = q.weight[((o * per_group_in + i) * kh + ky) * kw + kx];
                        acc += (v as i32 - zero as i32) * k as i32;
                    }
                }
            }
            out[o * oh * ow + oy * ow + ox] = acc;
        }
    }
    out
}

#[test]
fn int8_convolutions_equal_plain_integer_loops() {
    let _rng = seeded(0);
    use sepnet_model::kernels::simd::{Level, set_level};
    // Every instruction set computes the same integers (the widest last, as the others find it).
    for level in [Level::Portable, Level::Avx2, Level::Avx512] {
        set_level(level);
        convolutions_equal_plain_integer_loops();
    }
}

fn convolutions_equal_plain_integer_loops() {
    for &(text, input) in SPECS {
        let (spec, network) = network(text, input, (0.5, 1.5));
        let program = lower(&spec, &network);
        let x = images(8, input);
        let ranges = calibrate(&program, &x, 8, RangeMethod::MinMax).unwrap();
        let int8 = Quantized::new(program, &ranges, scheme(Granularity::PerChannel)).unwrap();
        for op in &int8.program.ops {
            let OpKind::Conv(conv) = &op.kind else {
                continue;
            };
            let shape = int8.program.shapes[op.inputs[0]];
            let xq = int8.params[op.inputs[0]];
            let y = int8.params[op.output];
            let image: Vec<i8> = x
                .iter()
                .take(shape.iter().product())
                .map(|&v| xq.quantize(v.clamp(-1.0, 1.0)))
                .collect();
            let q = int8.weights[op.output - 1].as_ref().unwrap();
            let got = int8.image_op(op, &[&image], &[shape, int8.program.shapes[op.output]]);
            let per_out = got.len() / conv.out;
            let want: Vec<i8> = naive_conv(conv, q, &image, xq.zero, shape)
                .iter()
                .enumerate()
                .map(|(i, &acc)| {
                    let o = i / per_out;
                    let v = (acc as f32 * (xq.scale * q.scales[o] / y.scale)).round_ties_even()
                        + y.zero as f32;
                    let (lo, hi) = match op.act {
                        Act::Linear => (-128.0, 127.0),
                        Act::Relu => (y.zero as f32, 127.0),
                        Act::Relu6 => (y.zero as f32, y.quantize(6.0) as f32),
                        _ => (-128.0, 127.0),
                    };
                    v.clamp(lo, hi) as i8
                })
                .collect();
            assert_eq!(got, want, "{text}: {}", int8.program.names[op.output]);
        }
    }
}

/// Relative error of the int8 logits against the float program's, on the calibration images.
fn int8_error(spec: &NetworkSpec, network: &Network, granularity: Granularity) -> f32 {
    let program = lower(spec, network);
    let x = images(32, spec.input);
    let float = forward(&program, &x, 32, |_, _| {});
    let ranges = calibrate(&program, &x, 32, RangeMethod::MinMax).unwrap();
    let int8 = Quantized::new(program, &ranges, scheme(granularity)).unwrap();
    max_difference(&int8.forward(&x, 32), &float) / max_abs(&float)
}

#[test]
fn int8_logits_stay_close_to_float() {
    let _rng = seeded(0);
    for &(text, input) in SPECS {
        let (spec, network) = network(text, input, (0.5, 1.5));
        let error = int8_error(&spec, &network, Granularity::PerChannel);
        assert!(
            error < 0.05,
            "{text}: int8 logits off by {error} of their range"
        );
    }
}

/// Krishnamoorthi's finding: a depthwise channel whose input is dead (always 0 after a ReLU)
/// has a tiny running variance; BatchNorm folded into its kernel makes that kernel hundreds of
/// times larger than the others, and one scale per tensor then leaves the live channels'
/// weights nothing but zeros. Per-channel scales keep them.
#[test]
fn per_channel_scales_survive_what_per_tensor_ones_do_not() {
    let _rng = seeded(0);
    let device = Device::flex();
    let text = "conv:16:3,bn,relu,dw:3,bn,relu,conv:16:1,bn,relu,gap,dense:4";
    let (spec, mut network) = network(text, [10, 10, 3], (0.5, 1.5));
    let dead = |live: f32, dead: f32| -> Tensor<1> {
        let v: Vec<f32> = (0..16).map(|c| if c < 4 { dead } else { live }).collect();
        Tensor::from_floats(v.as_slice(), &device)
    };
    let Layer::BatchNorm(bn) = &mut network.layers[1] else {
        panic!("layer 1 is bn")
    };
    bn.inner.beta = Param::from_tensor(dead(0.0, -100.0)); // channels 0..4 never pass the ReLU
    let Layer::BatchNorm(bn) = &mut network.layers[4] else {
        panic!("layer 4 is bn")
    };
    bn.inner.running_var = RunningState::new(dead(1.0, 1e-6));
    bn.inner.running_mean = RunningState::new(dead(0.0, 0.0));
    let per_tensor = int8_error(&spec, &network, Granularity::PerTensor);
    let per_channel = int8_error(&spec, &network, Granularity::PerChannel);
    assert!(
        per_channel * 5.0 < per_tensor,
        "per-channel {per_channel}, per-tensor {per_tensor}"
    );
}

#[test]
fn quantization_is_onnx_quantize_linear() {
    let q = QParams::of(Range {
        min: -1.0,
        max: 3.0,
    });
    assert_eq!(q.scale, 4.0 / 255.0);
    assert_eq!(q.zero, -64); // -128 + 1/scale = -128 + 63.75, rounded
    assert_eq!(q.quantize(0.0), q.zero);
    assert_eq!(q.quantize(100.0), 127);
    assert_eq!(q.quantize(-100.0), -128);
    let half = QParams {
        scale: 1.0,
        zero: 0,
    };
    assert_eq!(
        [0.5, 1.5, 2.5, -0.5].map(|x| half.quantize(x)),
        [0, 2, 2, 0]
    );
    assert_eq!(
        QParams::of(Range { min: 0.0, max: 0.0 }),
        QParams {
            scale: 1.0,
            zero: 0
        }
    );
}

#[test]
fn what_has_no_int8_form_is_refused_by_name() {
    let _rng = seeded(0);
    let refused = |text: &str| {
        let (spec, network) = network(text, [8, 8, 1], (0.5, 1.5));
        let [h, w, c] = spec.input;
        Program::lower(&graph(&spec, &network).unwrap(), [c, h, w]).unwrap_err()
    };
    assert!(refused("conv:4:3,relu,bn,flatten,dense:2").contains("BatchNorm"));
    assert!(refused("flatten,bn,dense:2").contains("BatchNorm"));
    assert!(refused("conv:4:3,gelu,gap,dense:2").contains("the ONNX op Div has no int8 form"));
    let (spec, network) = network("conv:4:3,gap", [8, 8, 1], (0.5, 1.5));
    let program = lower(&spec, &network);
    let ranges = vec![Range { min: 0.0, max: 1.0 }; program.shapes.len()];
    assert!(
        Quantized::new(program, &ranges, scheme(Granularity::PerTensor))
            .unwrap_err()
            .contains("dense")
    );
}

#[test]
fn non_finite_activations_are_refused_naming_the_tensor() {
    let _rng = seeded(0);
    let (spec, network) = network("conv:4:3,relu,flatten,dense:2", [6, 6, 1], (0.5, 1.5));
    let program = lower(&spec, &network);
    let mut x = images(2, [6, 6, 1]);
    x[3] = f32::NAN;
    let error = calibrate(&program, &x, 2, RangeMethod::MinMax).unwrap_err();
    assert!(
        error.contains("`images`") && error.contains("non-finite"),
        "{error}"
    );
}

#[test]
fn percentile_ranges_lie_within_the_extremes() {
    let _rng = seeded(0);
    let input = [32, 32, 1];
    let (spec, network) = network("conv:4:3,bn,relu,gap,dense:2", input, (0.5, 1.5));
    let program = lower(&spec, &network);
    let x = images(64, input);
    let minmax = calibrate(&program, &x, 64, RangeMethod::MinMax).unwrap();
    let percentile = calibrate(&program, &x, 64, RangeMethod::Percentile).unwrap();
    for (m, p) in minmax.iter().zip(&percentile) {
        assert!(
            m.min <= p.min && p.max <= m.max && p.min <= 0.0 && p.max >= 0.0,
            "{m:?} {p:?}"
        );
    }
    // 65,536 normal values: the 6 beyond each end of the range are cut.
    assert!(
        percentile[0].max < minmax[0].max,
        "{:?} {:?}",
        percentile[0],
        minmax[0]
    );
}

#[test]
fn weights_use_the_whole_range_or_seven_bits_of_it() {
    let _rng = seeded(0);
    let (text, input) = SPECS[1];
    let (spec, network) = network(text, input, (0.5, 1.5));
    let program = lower(&spec, &network);
    let x = images(4, input);
    let ranges = calibrate(&program, &x, 4, RangeMethod::MinMax).unwrap();
    for (reduce_range, top) in [(false, 127), (true, 64)] {
        for granularity in [Granularity::PerTensor, Granularity::PerChannel] {
            let scheme = Scheme {
                granularity,
                reduce_range,
            };
            let int8 = Quantized::new(program.clone(), &ranges, scheme).unwrap();
            let most = int8
                .weights
                .iter()
                .flatten()
                .flat_map(|q| &q.weight)
                .map(|w| w.unsigned_abs())
                .max();
            assert_eq!(most, Some(top), "{scheme:?}");
        }
    }
}

/// The program with each op's weights replaced by their int8 values (biases kept float).
fn with_int8_weights(int8: &Quantized) -> Program {
    let mut program = int8.program.clone();
    for (op, q) in program.ops.iter_mut().zip(&int8.weights) {
        let Some(q) = q else { continue };
        let weight = match &mut op.kind {
            OpKind::Conv(conv) => &mut conv.weight,
            OpKind::Dense(dense) => &mut dense.weight,
            _ => continue,
        };
        let per_out = weight.len() / q.scales.len();
        for (i, w) in weight.iter_mut().enumerate() {
            *w = q.weight[i] as f32 * q.scales[i / per_out];
        }
    }
    program
}

/// Quantization-aware training trains the weights int8 deploys: the network with fake
/// quantization computes what the folded program computes on int8's weights, far closer than
/// the float network does, on every kind and both granularities.
#[test]
fn fake_quantization_trains_the_weights_int8_deploys() {
    let _rng = seeded(0);
    for &(text, input) in SPECS {
        let (spec, network) = network(text, input, (0.01, 3.0));
        let program = lower(&spec, &network);
        let x = images(8, input);
        let ranges = calibrate(&program, &x, 8, RangeMethod::MinMax).unwrap();
        for granularity in [Granularity::PerTensor, Granularity::PerChannel] {
            let scheme = scheme(granularity);
            let int8 = Quantized::new(program.clone(), &ranges, scheme).unwrap();
            let want = forward(&with_int8_weights(&int8), &x, 8, |_, _| {});
            let fake = network.clone().with_fake_quant(Some(scheme.fake_quant()));
            let got = logits(&fake, &x, 8, input);
            let float = logits(&network, &x, 8, input);
            let (fake_error, float_error) =
                (max_difference(&got, &want), max_difference(&float, &want));
            assert!(
                fake_error < 1e-4 * max_abs(&want) && fake_error * 20.0 < float_error,
                "{text} {granularity}: fake quantization off by {fake_error}, float by {float_error}"
            );
        }
    }
}
