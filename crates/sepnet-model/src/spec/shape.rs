//! Shape inference: what each layer of a spec receives and produces, without any tensor.

use serde::{Serialize, Serializer};

use super::{NetworkSpec, Window};

/// The most values one image's activation may have after any layer (2³⁴, 64 GiB of f32):
/// far beyond any network that trains, and small enough that counts built on it cannot
/// overflow.
pub const MAX_ACTIVATION: usize = 1 << 34;

fn check_size(shape: Shape) -> Result<Shape, String> {
    let values = match shape {
        Shape::Spatial([h, w, c]) => h.checked_mul(w).and_then(|n| n.checked_mul(c)),
        Shape::Flat(n) => Some(n),
    };
    match values {
        Some(n) if n <= MAX_ACTIVATION => Ok(shape),
        _ => Err(format!(
            "its output {shape} is more values per image than sepnet accepts ({MAX_ACTIVATION})"
        )),
    }
}

/// An activation's shape for one image: spatial `[h, w, c]` (Keras order) or flat `[n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Height, width, channels.
    Spatial([usize; 3]),
    /// Features.
    Flat(usize),
}

impl Shape {
    /// Number of values.
    pub fn numel(&self) -> usize {
        match self {
            Shape::Spatial([h, w, c]) => h * w * c,
            Shape::Flat(n) => *n,
        }
    }

    /// Pixels per channel: `h·w` of a spatial shape, 1 for a flat one.
    pub fn plane(&self) -> usize {
        match self {
            Shape::Spatial([h, w, _]) => h * w,
            Shape::Flat(_) => 1,
        }
    }

    /// Channels of a spatial shape, features of a flat one.
    pub fn channels(&self) -> usize {
        match self {
            Shape::Spatial([_, _, c]) => *c,
            Shape::Flat(n) => *n,
        }
    }

    /// As a list, `[h, w, c]` or `[n]`.
    pub fn to_vec(&self) -> Vec<usize> {
        match self {
            Shape::Spatial(s) => s.to_vec(),
            Shape::Flat(n) => vec![*n],
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Spatial([h, w, c]) => write!(f, "{h}×{w}×{c}"),
            Shape::Flat(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Shape {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_vec().serialize(serializer)
    }
}

/// What one layer receives and produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerShape {
    /// Input shape.
    pub input: Shape,
    /// Output shape.
    pub output: Shape,
}

/// A layer that does not fit the shape it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    /// Index of the layer in the spec.
    pub layer: usize,
    /// What is wrong.
    pub message: String,
}

/// The input and output shape of every layer, or the first layer that does not fit.
pub fn infer_shapes(spec: &NetworkSpec) -> Result<Vec<LayerShape>, ShapeError> {
    let [h, w, c] = spec.input;
    if h == 0 || w == 0 || c == 0 {
        return Err(ShapeError {
            layer: 0,
            message: format!("input {h}×{w}×{c} has a zero side"),
        });
    }
    if spec.layers.is_empty() {
        return Err(ShapeError {
            layer: 0,
            message: "the network has no layers".into(),
        });
    }
    let mut shape = check_size(Shape::Spatial(spec.input)).map_err(|message| ShapeError {
        layer: 0,
        message: format!("the input: {message}"),
    })?;
    let mut shapes = Vec::with_capacity(spec.layers.len());
    for (i, layer) in spec.layers.iter().enumerate() {
        let output = layer
            .output(shape)
            .and_then(check_size)
            .map_err(|message| ShapeError { layer: i, message })?;
        shapes.push(LayerShape {
            input: shape,
            output,
        });
        shape = output;
    }
    Ok(shapes)
}

/// True when a kernel is larger than its (unpadded) input in either direction: Keras accepts
/// such a layer silently under `same` padding; sepnet's summary warns about it.
pub(crate) fn kernel_exceeds_input(window: &Window, input: Shape) -> bool {
    match input {
        Shape::Spatial([h, w, _]) => window.kernel[0] > h || window.kernel[1] > w,
        Shape::Flat(_) => false,
    }
}
