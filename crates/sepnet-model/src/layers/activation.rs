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
}

impl Activation {
    /// Applies the activation to a tensor of any rank.
    pub fn apply<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Linear => x,
            Activation::Relu => activation::relu(x),
            Activation::Relu6 => activation::relu6(x),
        }
    }

    /// The spec / summary name (`relu`, `relu6`), or `None` for identity.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Activation::Linear => None,
            Activation::Relu => Some("relu"),
            Activation::Relu6 => Some("relu6"),
        }
    }
}
