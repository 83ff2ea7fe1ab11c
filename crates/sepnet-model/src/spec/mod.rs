//! Architecture specs: a network as a list of layer specs, with a short text form.
//!
//! Grammar (layers separated by `,`; a layer is a kind followed by `:`-separated arguments):
//!
//! | layer | positional args | options |
//! |---|---|---|
//! | `conv:F:K` | filters, kernel | `s=`, `d=`, `same`/`valid`/`pad=T/B/L/R`, `nobias`, `relu`/`relu6` |
//! | `dw:K` | kernel | `m=` (depth multiplier), `s=`, `d=`, padding, `bias`, activation, `fans=` |
//! | `sep:F:K` | filters, kernel | `m=`, `s=`, `d=`, padding, `nobias`, activation, `fans=` |
//! | `dwsep:F` | filters | `s=`, `relu6`, `fans=` (MobileNet block: dw3×3-BN-ReLU-pw-BN-ReLU) |
//! | `ir:F` | filters | `e=` (expansion, 6), `s=`, `fans=` (MobileNet v2 inverted residual block) |
//! | `bn`, `relu`, `relu6` | | |
//! | `maxpool[:K]`, `avgpool[:K]` (`pool` = `maxpool:2`) | window (default 2) | `s=`, `same`/`valid` |
//! | `gap`, `flatten` | | |
//! | `dense:N` | units | `nobias`, activation |
//! | `dropout:R` | rate in [0, 1) | |
//!
//! Kernels, strides and windows are `3` or `3x5` (height × width). Convolutions default to
//! `same` padding, stride 1, no activation; `conv`/`sep`/`dense` have a bias unless `nobias`,
//! `dw` has none unless `bias`. `fans=keras` initialises a depthwise kernel with Keras's fans
//! instead of each group's own, `fans=torch` as PyTorch does ([`crate::layers::DepthwiseFans`]).
//!
//! ```
//! use sepnet_model::spec::NetworkSpec;
//! let spec = NetworkSpec::parse("conv:32:3:relu,pool,sep:64:3:relu,pool,flatten,dense:10", [28, 28, 1]).unwrap();
//! assert_eq!(spec.layers.len(), 6);
//! assert_eq!(spec.to_string(), "conv:32:3:relu,maxpool:2,sep:64:3:relu,maxpool:2,flatten,dense:10");
//! let err = NetworkSpec::parse("conv:32:3,sep:64:x", [28, 28, 1]).unwrap_err();
//! assert!(err.to_string().contains("sep:64:x"));
//! ```

mod parse;
mod shape;

pub use crate::kinds::LayerSpec;
pub use crate::kinds::args::MAX_SIZE;
pub use parse::SpecError;
pub(crate) use parse::locate_shape_error as locate_error;
pub(crate) use shape::kernel_exceeds_input;
pub use shape::{LayerShape, MAX_ACTIVATION, Shape, ShapeError, infer_shapes};

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::layers::{DepthwiseFans, Padding};

/// Geometry of a sliding-window layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Kernel `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// Border handling.
    pub padding: Padding,
}

impl Window {
    /// A square `k×k` window, stride 1, `same` padding.
    pub fn square(kernel: usize) -> Self {
        Window {
            kernel: [kernel; 2],
            stride: [1; 2],
            dilation: [1; 2],
            padding: Padding::Same,
        }
    }

    /// The same window with a square stride.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = [stride; 2];
        self
    }

    /// The same window with other padding.
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
}

/// A complete network: a name, the input it expects and its layers.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    /// Model name (a built-in name, or `custom`).
    pub name: String,
    /// Input `[height, width, channels]`.
    pub input: [usize; 3],
    /// Layers in order.
    pub layers: Vec<LayerSpec>,
}

impl NetworkSpec {
    /// Parses the text form (see the module docs) for a given input `[h, w, c]`, and checks
    /// that every layer fits the shape it receives.
    pub fn parse(text: &str, input: [usize; 3]) -> Result<Self, SpecError> {
        let layers = parse::parse_layers(text)?;
        let spec = NetworkSpec {
            name: "custom".into(),
            input,
            layers,
        };
        if let Err(err) = infer_shapes(&spec) {
            return Err(parse::locate_shape_error(text, err));
        }
        Ok(spec)
    }

    /// Number of classes: the units of the final dense layer, if the network ends in one.
    pub fn classes(&self) -> Option<usize> {
        match self.layers.last() {
            Some(LayerSpec::Dense(dense)) => Some(dense.units),
            _ => None,
        }
    }

    /// Sets the initialisation fans of every depthwise kernel (in `dw`, `sep` and `dwsep`
    /// layers).
    ///
    /// ```
    /// use sepnet_model::layers::DepthwiseFans;
    /// use sepnet_model::spec::NetworkSpec;
    /// let spec = NetworkSpec::parse("sep:8:3,gap,dense:10", [8, 8, 3]).unwrap();
    /// let keras = spec.with_depthwise_fans(DepthwiseFans::Keras);
    /// assert_eq!(keras.to_string(), "sep:8:3:fans=keras,gap,dense:10");
    /// ```
    pub fn with_depthwise_fans(mut self, fans: DepthwiseFans) -> Self {
        for layer in &mut self.layers {
            layer.set_fans(fans);
        }
        self
    }

    /// Replaces the units of the final dense layer (the classifier).
    pub fn with_classes(mut self, classes: usize) -> Self {
        if let Some(LayerSpec::Dense(dense)) = self.layers.last_mut() {
            dense.units = classes;
        }
        self
    }
}

pub(crate) fn parse_layers_unchecked(text: &str) -> Result<Vec<LayerSpec>, SpecError> {
    parse::parse_layers(text)
}

/// The layers' text form; the input size is not part of it (`--input HxWxC` gives it).
impl fmt::Display for NetworkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, layer) in self.layers.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{layer}")?;
        }
        Ok(())
    }
}
