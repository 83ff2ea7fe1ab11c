//! Runs of layers kept in the blocked channel layout on the CPU (sepnet-kernels'
//! `cpu::direct`): a network converts its activations into blocks once before a run of
//! convolutions, separable convolutions (in training) and max pools the direct kernels take,
//! and back to NCHW once after it, instead of every layer reading and writing NCHW planes.
//!
//! In training and at inference: vgg-full's and mnist-full's training steps ran 10–16% faster
//! this way at batch 128 (docs/performance.md). `SEPNET_DIRECT=off` keeps every layer
//! in NCHW (for A/B timing).

use std::sync::OnceLock;

use burn::tensor::Tensor;

use crate::fusion;
use crate::kernels::{self, BlockedTensor, Fused, direct};
use crate::kinds::Layer;
use crate::layers::{Activation, Conv2d};
use crate::network::Features;

/// Whether the blocked runs are on (`SEPNET_DIRECT=off` turns them off).
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("SEPNET_DIRECT").map_or(true, |v| v != "off"))
}

/// The bias and the fused activation of a convolution whose activation is all fused (ReLU,
/// ReLU6 or linear) and which has a bias: what its epilogue does.
fn fused_epilogue(conv: &Conv2d) -> Option<(Tensor<1>, Fused)> {
    let (bias, activation) = conv.epilogue();
    let (fused, after) = activation.split();
    (after == Activation::Linear)
        .then_some(bias.map(|b| (b, fused)))
        .flatten()
}

/// Where a layer runs: the NCHW dims of its input, and whether autodiff records it.
#[derive(Clone, Copy, Debug)]
struct At {
    dims: [usize; 4],
    training: bool,
}

impl At {
    fn of(x: &Tensor<4>) -> At {
        At {
            dims: x.dims(),
            training: x.device().is_autodiff(),
        }
    }

    /// The layer after, on an input of `dims`.
    fn then(self, dims: [usize; 4]) -> At {
        At { dims, ..self }
    }
}

/// Whether a layer has a blocked form at `at`: a convolution [`conv_takes`] accepts, a
/// separable one in training whose pointwise half it accepts after a depthwise half with
/// multiplier 1, or a 2×2 max pool. At inference separable convolutions keep NCHW, where one
/// kernel runs both halves an image at a time (`kernels::separable`): vgg-separable's forward
/// pass took 37.5 ms so against 44 with the halves in blocks and 42 with them fused in blocks.
fn takes(layer: &Layer, at: At) -> bool {
    match layer {
        Layer::Conv(conv) => conv_takes(conv, at),
        Layer::Separable(sep) => {
            let g = sep.conv_dw.geometry(at.dims);
            at.training
                && sep.conv_dw.is_bare()
                && direct::depthwise::applies(&g)
                && conv_takes(&sep.conv_pw, at.then(g.output()))
        }
        Layer::Pool(pool) => pool.is_unpadded_max_2x2(at.dims),
        _ => false,
    }
}

/// Whether a convolution has a blocked form at `at`: stride 1, a bias and an activation the
/// epilogue applies, and a batch the kernel pays for ([`direct::batch_pays`]); in training,
/// over at least a block of channels. Fewer channels leave most of each vector multiplying
/// zeros, and the backward pass paid for it: with the network's input layer blocked,
/// mnist-full's training step ran 30–35 → 42–43 ms. Forward, writing the blocked layout
/// straight away beats the `gemm` path and a conversion after it: vgg-full's forward pass ran
/// 154 / 141 → 149 / 137 ms, mnist-full's 8.8 / 9.6 → 7.9 / 7.6.
fn conv_takes(conv: &Conv2d, at: At) -> bool {
    fused_epilogue(conv).is_some()
        && direct::applies(&conv.geometry(at.dims))
        && (at.dims[1] >= direct::lanes() || !at.training)
        && direct::batch_pays(at.dims[0])
}

/// The convolution that ends a layer, whose epilogue can write the blocked layout.
fn last_conv(layer: &Layer) -> Option<&Conv2d> {
    match layer {
        Layer::Conv(conv) => Some(conv),
        Layer::Separable(sep) => Some(&sep.conv_pw),
        _ => None,
    }
}

/// A layer ending in [`last_conv`], without that convolution's bias and activation.
fn convolve_only(layer: &Layer, x: Tensor<4>) -> Tensor<4> {
    match layer {
        Layer::Conv(conv) => conv.convolve_only(x),
        Layer::Separable(sep) => sep.conv_pw.convolve_only(sep.conv_dw.forward(x)),
        _ => unreachable!("`last_conv` names convolutions and separable convolutions only"),
    }
}

/// The NCHW dims a layer [`takes`] accepts gives for an input of `dims`.
fn output_dims(layer: &Layer, dims: [usize; 4]) -> Option<[usize; 4]> {
    match layer {
        Layer::Pool(_) => Some([dims[0], dims[1], dims[2] / 2, dims[3] / 2]),
        Layer::Conv(conv) => {
            let [n, _, oh, ow] = conv.geometry(dims).output();
            Some([n, conv.weight.dims()[0], oh, ow])
        }
        Layer::Separable(sep) => {
            let [n, _, oh, ow] = sep.conv_dw.geometry(dims).output();
            Some([n, sep.conv_pw.weight.dims()[0], oh, ow])
        }
        _ => None,
    }
}

/// Whether a blocked run starts at `layer` (input `dims`): it and the layer after it have
/// blocked forms, so no run converts for one layer alone.
fn starts_run(layer: &Layer, rest: &[Layer], at: At) -> bool {
    let next = |after| rest.first().is_some_and(|next| takes(next, at.then(after)));
    takes(layer, at) && output_dims(layer, at.dims).is_some_and(next)
}

/// Applies `layer` (one [`takes`] accepted) to a blocked activation.
fn apply(layer: &Layer, x: BlockedTensor) -> BlockedTensor {
    match layer {
        Layer::Conv(conv) => apply_conv(conv, x),
        Layer::Separable(sep) => {
            let g = sep.conv_dw.geometry(x.dims);
            apply_conv(&sep.conv_pw, x.depthwise(sep.conv_dw.weight.val(), g))
        }
        Layer::Pool(_) => x.max_pool_2x2(),
        _ => unreachable!("`takes` accepts convolutions, separable ones and pools only"),
    }
}

/// Applies a convolution [`conv_takes`] accepted, with its epilogue.
fn apply_conv(conv: &Conv2d, x: BlockedTensor) -> BlockedTensor {
    let (bias, fused) = fused_epilogue(conv).expect("`conv_takes` checked the epilogue");
    let g = conv.geometry(x.dims);
    x.conv2d(conv.weight.val(), bias, g, fused)
}

/// An activation between layers as [`Network::forward`](crate::Network::forward) carries it:
/// in NCHW (or flat), or blocked. `bench --layers` walks a network with it, so each layer is
/// timed in the form the network runs it in.
///
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use sepnet_model::{Flow, Network, spec::NetworkSpec};
/// let spec = NetworkSpec::parse("conv:16:3:relu,conv:16:3:relu,pool,flatten,dense:2", [8, 8, 16]).unwrap();
/// let net = Network::new(&spec, &Device::flex()).unwrap();
/// let images = Tensor::<4>::random([4, 16, 8, 8], Distribution::Default, &Device::flex());
/// let (mut flow, mut i) = (Flow::new(images), 0);
/// while i < net.layers.len() {
///     let (next, taken) = flow.through(&net.layers[i..]);
///     (flow, i) = (next, i + taken);
/// }
/// assert_eq!(flow.dims(), vec![4, 2]);
/// ```
#[derive(Clone, Debug)]
pub enum Flow {
    /// As the layers take it.
    Plain(Features),
    /// In the blocked layout.
    Blocked(BlockedTensor),
}

impl Flow {
    /// The network's input.
    pub fn new(images: Tensor<4>) -> Flow {
        Flow::Plain(Features::Spatial(images))
    }

    /// The first of `layers` applied (the others come after it), in the blocked layout when a
    /// run goes on or starts there, or with the layers after it as one ([`fusion`]).
    /// Returns how many layers it applied.
    ///
    /// # Panics
    /// When `layers` is empty.
    pub fn through(self, layers: &[Layer]) -> (Flow, usize) {
        let (layer, rest) = layers.split_first().expect("a layer to apply");
        let x = match self {
            Flow::Blocked(x) if takes(layer, At::of(&x.values).then(x.dims)) => {
                return (Flow::Blocked(apply(layer, x)), 1);
            }
            Flow::Blocked(x) => x.into_nchw(),
            Flow::Plain(Features::Spatial(x)) => x,
            Flow::Plain(x) => return (Flow::Plain(layer.forward(x)), 1),
        };
        match fusion::Group::find(layers, &x) {
            Some(group) => (Flow::Plain(Features::Spatial(group.apply(x))), group.len()),
            None => (start(layer, rest, x), 1),
        }
    }

    /// The activation as the layers take it.
    pub fn into_features(self) -> Features {
        match self {
            Flow::Plain(x) => x,
            Flow::Blocked(x) => Features::Spatial(x.into_nchw()),
        }
    }

    /// Whether it is in the blocked layout.
    pub fn is_blocked(&self) -> bool {
        matches!(self, Flow::Blocked(_))
    }

    /// The dims of the activation it stands for: `[n, c, h, w]` or `[n, features]`.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Flow::Plain(Features::Spatial(x)) => x.dims().to_vec(),
            Flow::Plain(Features::Flat(x)) => x.dims().to_vec(),
            Flow::Blocked(x) => x.dims.to_vec(),
        }
    }

    /// The same values, `f` applied to the tensor that holds them (its layout kept).
    pub fn map(
        self,
        f: impl Fn(Tensor<4>) -> Tensor<4>,
        g: impl Fn(Tensor<2>) -> Tensor<2>,
    ) -> Flow {
        match self {
            Flow::Plain(Features::Spatial(x)) => Flow::Plain(Features::Spatial(f(x))),
            Flow::Plain(Features::Flat(x)) => Flow::Plain(Features::Flat(g(x))),
            Flow::Blocked(x) => Flow::Blocked(BlockedTensor {
                values: f(x.values),
                dims: x.dims,
            }),
        }
    }

    /// Runs the backward pass from a gradient of ones over the tensor that holds it (a
    /// timing's work; the gradients are dropped).
    pub fn backward(&self) {
        let _grads = match self {
            Flow::Plain(Features::Spatial(x)) => x.backward(),
            Flow::Plain(Features::Flat(x)) => x.backward(),
            Flow::Blocked(x) => x.values.backward(),
        };
    }
}

/// `layer` on an NCHW activation, starting a run where one can start: at `layer`, or at the
/// layer after it when `layer` ends in a convolution whose epilogue can write the blocked layout
/// (its output is then kept only once, blocked: converting after it kept both copies until
/// the backward pass, a third more memory in vgg-full's training step).
fn start(layer: &Layer, rest: &[Layer], x: Tensor<4>) -> Flow {
    let at = At::of(&x);
    if !enabled() || !kernels::applies_to(&x) {
        return Flow::Plain(layer.forward(Features::Spatial(x)));
    }
    if starts_run(layer, rest, at) {
        return Flow::Blocked(apply(layer, BlockedTensor::from_nchw(x)));
    }
    let conv = last_conv(layer).and_then(fused_epilogue);
    if let (Some((bias, fused)), Some(after)) = (conv, output_dims(layer, at.dims)) {
        let next_starts = rest
            .split_first()
            .is_some_and(|(next, rest)| starts_run(next, rest, at.then(after)));
        if next_starts {
            let y = convolve_only(layer, x);
            return Flow::Blocked(BlockedTensor::from_nchw_with(y, bias, fused));
        }
    }
    Flow::Plain(layer.forward(Features::Spatial(x)))
}
