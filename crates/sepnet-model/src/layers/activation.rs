//! Element-wise activations that a layer can apply to its own output (Keras's `activation=`).

use burn::tensor::{Tensor, activation};
use serde::{Deserialize, Serialize};

/// An activation fused into a layer, or applied as a layer of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Activation {
    /// Identity.
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`, as in Keras's MobileNet.
    Relu6,
    /// `1 / (1 + e^−x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `x · sigmoid(x)` (SiLU, Keras's and EfficientNet's swish).
    Silu,
    /// `x · relu6(x + 3) / 6`, MobileNet v3's hard swish.
    Hardswish,
    /// `relu6(x + 3) / 6`, as Keras 3 and PyTorch define it (not ONNX's default slope 0.2).
    Hardsigmoid,
    /// `x · Φ(x)` with the exact normal CDF (`erf`), Keras's `gelu(approximate=False)`.
    Gelu,
}

pub use sepnet_kernels::Fused;

impl Activation {
    /// Every activation, in the order the spec help lists them.
    pub const ALL: [Activation; 9] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Relu6,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Silu,
        Activation::Hardswish,
        Activation::Hardsigmoid,
        Activation::Gelu,
    ];

    /// Applies the activation to a tensor of any rank.
    pub fn apply<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Linear => x,
            Activation::Relu => activation::relu(x),
            Activation::Relu6 => activation::relu6(x),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::Tanh => activation::tanh(x),
            Activation::Silu => activation::silu(x),
            Activation::Hardswish => activation::hard_swish(x),
            Activation::Hardsigmoid => activation::hard_sigmoid(x, 1.0 / 6.0, 0.5),
            Activation::Gelu => activation::gelu(x),
        }
    }

    /// The spec / summary name (`relu`, `silu`, …), or `None` for identity.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Activation::Linear => None,
            Activation::Relu => Some("relu"),
            Activation::Relu6 => Some("relu6"),
            Activation::Sigmoid => Some("sigmoid"),
            Activation::Tanh => Some("tanh"),
            Activation::Silu => Some("silu"),
            Activation::Hardswish => Some("hardswish"),
            Activation::Hardsigmoid => Some("hardsigmoid"),
            Activation::Gelu => Some("gelu"),
        }
    }

    /// The activation as sepnet's kernels fuse it, if they can.
    pub fn fused(self) -> Option<Fused> {
        match self {
            Activation::Linear => Some(Fused::Linear),
            Activation::Relu => Some(Fused::Relu),
            Activation::Relu6 => Some(Fused::Relu6),
            _ => None,
        }
    }

    /// The part a kernel fuses and the part applied after it: a piecewise-linear activation is
    /// all fused; a smooth one (sigmoid, SiLU, …) follows a kernel that fuses nothing.
    ///
    /// ```
    /// use sepnet_model::layers::{Activation, Fused};
    /// assert_eq!(Activation::Relu6.split(), (Fused::Relu6, Activation::Linear));
    /// assert_eq!(Activation::Silu.split(), (Fused::Linear, Activation::Silu));
    /// ```
    pub fn split(self) -> (Fused, Activation) {
        match self.fused() {
            Some(fused) => (fused, Activation::Linear),
            None => (Fused::Linear, self),
        }
    }
}
