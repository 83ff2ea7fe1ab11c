//! Consecutive layers run as one on sepnet's CPU kernels, where a spec writes them apart:
//! a convolution and the BatchNorm after it at inference (the BatchNorm folded into the
//! weights and bias, its activation into the convolution's epilogue), and a BatchNorm with
//! the activation layer after it (the activation applied as the normalised values are
//! written). Keras's MobileNets write `Conv2D, BatchNormalization, ReLU` as three layers;
//! run apart, each a pass over the activation, MobileNet-v2's standalone ReLU6 layers took a
//! tenth of its forward pass.

use burn::tensor::Tensor;

use crate::kinds::Layer;
use crate::layers::{Activation, BatchNorm, Conv2d};

/// Layers that run as one.
pub(crate) enum Group<'a> {
    /// A convolution without activation and the BatchNorm after it, at inference, with the
    /// activation after the BatchNorm; `len` layers in all.
    ConvNorm {
        conv: &'a Conv2d,
        bn: &'a BatchNorm,
        activation: Activation,
        len: usize,
    },
    /// A BatchNorm and the activation layer after it.
    NormAct(&'a BatchNorm, Activation),
}

/// The activation of the layer after a BatchNorm, and how many layers that makes.
fn after_norm(rest: &[Layer]) -> (Activation, usize) {
    match rest.first() {
        Some(Layer::Activation(act)) => (act.activation(), 2),
        _ => (Activation::Linear, 1),
    }
}

impl Group<'_> {
    /// The group that starts `layers` for the NCHW input `x`, if one does.
    pub(crate) fn find<'a>(layers: &'a [Layer], x: &Tensor<4>) -> Option<Group<'a>> {
        match layers {
            [Layer::Conv(conv), Layer::BatchNorm(bn), rest @ ..]
                if conv.epilogue().1 == Activation::Linear && bn.folds_at(x) =>
            {
                let (activation, taken) = after_norm(rest);
                Some(Group::ConvNorm {
                    conv,
                    bn,
                    activation,
                    len: 1 + taken,
                })
            }
            [Layer::BatchNorm(bn), Layer::Activation(act), ..] => {
                Some(Group::NormAct(bn, act.activation()))
            }
            _ => None,
        }
    }

    /// The layers it holds.
    pub(crate) fn len(&self) -> usize {
        match self {
            Group::ConvNorm { len, .. } => *len,
            Group::NormAct(..) => 2,
        }
    }

    /// The group applied to `x`.
    pub(crate) fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Group::ConvNorm {
                conv,
                bn,
                activation,
                ..
            } => conv.forward_folded(x, bn, *activation),
            Group::NormAct(bn, activation) => bn.forward_activated(x, *activation),
        }
    }
}
