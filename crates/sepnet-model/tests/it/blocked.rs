//! A network's runs in the blocked layout (`Network::forward` on the CPU) against the same
//! layers applied one by one in NCHW (`Layer::forward`): the logits at inference and in
//! training, and every convolution's gradients through autodiff, within float rounding of
//! each other (the two paths sum in different orders).

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Features, Layer, Network};

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
        })
        .collect()
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

/// The layers one by one, every one in NCHW.
fn layer_by_layer(net: &Network, images: Tensor<4>) -> Tensor<2> {
    match net
        .layers
        .iter()
        .fold(Features::Spatial(images), |x, l| l.forward(x))
    {
        Features::Flat(logits) => logits,
        Features::Spatial(_) => unreachable!(),
    }
}

/// Runs that start and end mid-network, channel counts off the 8- and 16-lane blocks (20,
/// 36), an odd plane under a pool (7×7 → 3×3), ReLU6 and linear epilogues, a dilated kernel,
/// a 5×5 kernel, a convolution without bias (which leaves the run), and separable convolutions
/// (depthwise and pointwise halves in blocks) at stride 1 and 2 and dilated; BatchNorms
/// with the activation layer after them (run as one), on planes and on flat features, and
/// after a convolution (folded into it at inference).
const SPECS: &[(&str, [usize; 3])] = &[
    (
        "conv:20:3:relu,conv:20:3:relu,pool,conv:36:3:relu6,conv:36:5,pool,flatten,dense:3",
        [14, 14, 3],
    ),
    (
        "conv:16:3,conv:24:3:d=2:relu,conv:24:3:relu,conv:24:3:nobias,bn,relu,pool,flatten,dense:2",
        [8, 8, 2],
    ),
    (
        "sep:16:3:relu,sep:20:3:relu,pool,sep:36:3:s=2:relu6,sep:36:3:d=2,sep:24:3:relu,\
         flatten,dense:3",
        [12, 12, 3],
    ),
    (
        "conv:8:3:nobias,bn,relu6,conv:16:3:nobias,bn,sigmoid,conv:16:3:relu,conv:16:3:nobias,bn,relu,\
         pool,flatten,dense:6,bn,relu,dense:2",
        [8, 8, 3],
    ),
];

#[test]
fn blocked_runs_match_the_layers_one_by_one_at_inference() {
    let _rng = crate::rng_lock();
    let device = Device::flex();
    for &(text, [h, w, c]) in SPECS {
        let spec = NetworkSpec::parse(text, [h, w, c]).unwrap_or_else(|e| panic!("{text}: {e}"));
        let net = Network::new(&spec, &device).unwrap().valid();
        let images = images(text, [3, c, h, w], &device);
        let blocked = to_vec(net.forward(images.clone()));
        let plain = to_vec(layer_by_layer(&net, images));
        assert_close(&blocked, &plain, text);
    }
}

#[test]
fn blocked_runs_match_the_layers_one_by_one_in_training() {
    let _rng = crate::rng_lock();
    let device = Device::flex().autodiff();
    for &(text, [h, w, c]) in SPECS {
        let spec = NetworkSpec::parse(text, [h, w, c]).unwrap_or_else(|e| panic!("{text}: {e}"));
        let net = Network::new(&spec, &device).unwrap();
        let images = images(text, [3, c, h, w], &device);
        let blocked = net.forward(images.clone());
        let plain = layer_by_layer(&net, images);
        let what = |part: &str| format!("{text}: {part}");
        assert_close(
            &to_vec(blocked.clone()),
            &to_vec(plain.clone()),
            &what("logits"),
        );
        let upstream = Tensor::<2>::from_data(
            TensorData::new(values(blocked.dims().iter().product(), 2), blocked.dims()),
            &device,
        );
        let grads = [blocked, plain].map(|y| (y * upstream.clone()).sum().backward());
        let mut convolutions = 0;
        let mut compare = |weight: &Tensor<4>, bias: Option<&Tensor<1>>, kind: &str| {
            let [a, b] = grads.each_ref().map(|g| to_vec(weight.grad(g).unwrap()));
            assert_close(&a, &b, &what(&format!("a {kind}'s weight gradient")));
            if let Some(bias) = bias {
                let [a, b] = grads.each_ref().map(|g| to_vec(bias.grad(g).unwrap()));
                assert_close(&a, &b, &what(&format!("a {kind}'s bias gradient")));
            }
            convolutions += 1;
        };
        for layer in &net.layers {
            let convs = match layer {
                Layer::Conv(conv) => vec![(conv, "convolution")],
                Layer::Separable(sep) => {
                    let dw = sep.conv_dw.weight.val();
                    compare(&dw, None, "depthwise half");
                    vec![(&sep.conv_pw, "pointwise half")]
                }
                _ => vec![],
            };
            for (conv, kind) in convs {
                let bias = conv.bias.as_ref().map(|b| b.val());
                compare(&conv.weight.val(), bias.as_ref(), kind);
            }
        }
        assert!(convolutions >= 4, "{text}: too few convolutions compared");
    }
}

/// A batch of 3 images for `text`'s network.
fn images(text: &str, dims: [usize; 4], device: &Device) -> Tensor<4> {
    let data = TensorData::new(values(dims.iter().product(), text.len() as u32), dims);
    Tensor::from_data(data, device)
}
