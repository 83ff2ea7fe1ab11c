//! # sepnet-model
//!
//! Layers, reference architectures and Keras-exact summaries for measuring what depthwise
//! separable convolutions buy.
//!
//! - [`layers`]: `Conv2d`, `DepthwiseConv2d`, `SeparableConv2d`, MobileNet's
//!   `DepthwiseSeparableBlock`, BatchNorm, pooling, dense — burn modules, NCHW.
//! - [`spec`]: the architecture text form (`conv:32:3:relu,pool,sep:64:3,...`).
//! - [`kinds`]: everything about each kind of layer — parse, print, shape, cost, build — one file each.
//! - [`architectures`]: the built-in models by name ([`resolve_model`]).
//! - [`kernels`]: sepnet's own CPU and GPU kernels (the `sepnet-kernels` crate, re-exported).
//! - [`Network`]: one builder from spec to burn module; [`Summary`]: params and MACs.
//! - [`Classifier`]: what sepnet trains — a `Network`, or any burn module of your own.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use sepnet_model::{resolve_model, ModelOptions, Network, Summary};
//!
//! let spec = resolve_model("vgg-separable", &ModelOptions::default()).unwrap();
//! assert_eq!(Summary::of(&spec).unwrap().total_params, 174_821);
//! let device = Device::flex();
//! let net = Network::new(&spec, &device).unwrap();
//! assert_eq!(net.forward(Tensor::zeros([2, 3, 32, 32], &device)).dims(), [2, 10]);
//! ```

#![warn(missing_docs)]

pub mod architectures;
mod backend;
mod blocked;
mod classifier;
pub mod export;
mod fake_quant;
mod fusion;
pub use sepnet_kernels as kernels;
pub use sepnet_kernels::multiversion;
pub mod kinds;
pub mod layers;
mod network;
pub mod proto;
pub mod spec;
mod summary;

pub use architectures::{
    Adaptation, BUILTIN_MODELS, BuiltinModel, ModelError, ModelOptions, resolve_for_dataset,
    resolve_model,
};
pub use backend::Backend;
pub use blocked::Flow;
pub use classifier::{Classifier, NonFinite, draw_weights_now, first_non_finite};
pub use fake_quant::FakeQuant;
pub use kinds::{ActivationLayer, Flatten, Layer, LayerKind};
pub use layers::{Activation, Padding};
pub use network::{Features, Network};
pub use summary::{LayerSummary, Namer, SeparableCost, Summary, group_thousands, human};
