//! Runs of layers kept in the blocked channel layout on the CPU (sepnet-kernels'
//! `cpu::direct`): a network converts its activations into blocks once before a run of
//! convolutions and max pools the direct kernel takes, and back to NCHW once after it,
//! instead of every layer reading and writing NCHW planes.
//!
//! In training and at inference: vgg-full's training step ran 5.5% faster this way at batch
//! 128 and its forward pass 5–15% (docs/performance.md). `SEPNET_DIRECT=off` keeps every layer
//! in NCHW (for A/B timing).

use std::sync::OnceLock;

use burn::tensor::Tensor;

use crate::kernels::{self, BlockedTensor, direct};
use crate::kinds::Layer;
use crate::network::Features;

/// Whether the blocked runs are on (`SEPNET_DIRECT=off` turns them off).
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("SEPNET_DIRECT").map_or(true, |v| v != "off"))
}

/// What a layer does in the blocked layout, if it has a blocked form for an input of NCHW
/// `dims`: a stride-1 convolution with a bias and an activation the epilogue applies, over at
/// least a block of channels (on fewer, most of each vector would multiply zeros: the
/// 3-channel input layer ran 1.1× slower than the `gemm` path) and a batch the kernel pays
/// for ([`direct::batch_pays`]), or a 2×2 max pool.
fn takes(layer: &Layer, dims: [usize; 4]) -> bool {
    match layer {
        Layer::Conv(conv) => {
            let (bias, activation) = conv.epilogue();
            let (_, after) = activation.split();
            bias.is_some()
                && after == crate::layers::Activation::Linear
                && direct::applies(&conv.geometry(dims))
                && dims[1] >= direct::lanes()
                && direct::batch_pays(dims[0])
        }
        Layer::Pool(pool) => pool.is_unpadded_max_2x2(dims),
        _ => false,
    }
}

/// Applies `layer` (one [`takes`] accepted) to a blocked activation.
fn apply(layer: &Layer, x: BlockedTensor) -> BlockedTensor {
    match layer {
        Layer::Conv(conv) => {
            let (bias, activation) = conv.epilogue();
            let bias = bias.expect("`takes` checked the bias");
            let (fused, _) = activation.split();
            let g = conv.geometry(x.dims);
            x.conv2d(conv.weight.val(), bias, g, fused)
        }
        Layer::Pool(_) => x.max_pool_2x2(),
        _ => unreachable!("`takes` accepts convolutions and pools only"),
    }
}

/// An activation between layers: in NCHW (or flat), or blocked.
pub(crate) enum Flow {
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

    /// `layer` applied: in the blocked layout when it has a blocked form and (for a first
    /// blocked layer) a next layer that has one too, so no run converts for one layer alone.
    pub fn through(self, layer: &Layer, next: Option<&Layer>) -> Flow {
        match self {
            Flow::Blocked(x) if takes(layer, x.dims) => Flow::Blocked(apply(layer, x)),
            Flow::Blocked(x) => Flow::Plain(layer.forward(Features::Spatial(x.into_nchw()))),
            Flow::Plain(Features::Spatial(x)) if starts_run(layer, next, &x) => {
                Flow::Blocked(apply(layer, BlockedTensor::from_nchw(x)))
            }
            Flow::Plain(x) => Flow::Plain(layer.forward(x)),
        }
    }

    /// The activation as the layers take it.
    pub fn into_features(self) -> Features {
        match self {
            Flow::Plain(x) => x,
            Flow::Blocked(x) => Features::Spatial(x.into_nchw()),
        }
    }
}

/// Whether a blocked run starts at `layer`: blocked runs on, `x` on the CPU kernels, and both
/// `layer` and the layer after it have blocked forms.
fn starts_run(layer: &Layer, next: Option<&Layer>, x: &Tensor<4>) -> bool {
    let dims = x.dims();
    if !enabled() || !kernels::applies_to(x) || !takes(layer, dims) {
        return false;
    }
    let after = match layer {
        Layer::Pool(_) => [dims[0], dims[1], dims[2] / 2, dims[3] / 2],
        Layer::Conv(conv) => {
            let [n, _, oh, ow] = conv.geometry(dims).output();
            [n, conv.weight.dims()[0], oh, ow]
        }
        _ => return false,
    };
    next.is_some_and(|next| takes(next, after))
}
