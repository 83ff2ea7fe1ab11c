//! Shape inference: what each layer of a spec receives and produces, without any tensor.

use serde::{Serialize, Serializer};

use super::{LayerSpec, NetworkSpec, Window};

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
    let mut shape = Shape::Spatial(spec.input);
    let mut shapes = Vec::with_capacity(spec.layers.len());
    for (i, layer) in spec.layers.iter().enumerate() {
        let output =
            layer_output(layer, shape).map_err(|message| ShapeError { layer: i, message })?;
        shapes.push(LayerShape {
            input: shape,
            output,
        });
        shape = output;
    }
    Ok(shapes)
}

fn spatial(shape: Shape, what: &str) -> Result<[usize; 3], String> {
    match shape {
        Shape::Spatial(s) => Ok(s),
        Shape::Flat(n) => Err(format!(
            "{what} needs a spatial input but receives a flat vector of {n}"
        )),
    }
}

fn windowed(window: &Window, [h, w, _]: [usize; 3], what: &str) -> Result<[usize; 2], String> {
    window
        .padding
        .output_size_2d([h, w], window.kernel, window.stride, window.dilation)
        .ok_or_else(|| {
            format!(
                "{what} window {}×{} (stride {}×{}, dilation {}×{}, {:?} padding) does not fit the {h}×{w} input",
                window.kernel[0], window.kernel[1], window.stride[0], window.stride[1],
                window.dilation[0], window.dilation[1], window.padding
            )
        })
}

fn layer_output(layer: &LayerSpec, input: Shape) -> Result<Shape, String> {
    Ok(match layer {
        LayerSpec::Conv {
            filters, window, ..
        }
        | LayerSpec::Separable {
            filters, window, ..
        } => {
            let s = spatial(input, "a convolution")?;
            let [h, w] = windowed(window, s, "the convolution")?;
            Shape::Spatial([h, w, *filters])
        }
        LayerSpec::Depthwise {
            window, multiplier, ..
        } => {
            let s = spatial(input, "a depthwise convolution")?;
            let [h, w] = windowed(window, s, "the depthwise convolution")?;
            Shape::Spatial([h, w, s[2] * multiplier])
        }
        LayerSpec::DwSepBlock {
            filters, stride, ..
        } => {
            let s = spatial(input, "a depthwise separable block")?;
            let [h, w] = windowed(
                &Window::square(3).stride(*stride),
                s,
                "the block's depthwise",
            )?;
            Shape::Spatial([h, w, *filters])
        }
        LayerSpec::Pool { window, .. } => {
            let s = spatial(input, "pooling")?;
            let [h, w] = windowed(window, s, "the pooling")?;
            Shape::Spatial([h, w, s[2]])
        }
        LayerSpec::BatchNorm | LayerSpec::Activation(_) | LayerSpec::Dropout { .. } => input,
        LayerSpec::GlobalAvgPool => Shape::Flat(spatial(input, "global average pooling")?[2]),
        LayerSpec::Flatten => Shape::Flat(spatial(input, "flatten")?.iter().product()),
        LayerSpec::Dense { units, .. } => match input {
            Shape::Flat(_) => Shape::Flat(*units),
            Shape::Spatial(s) => {
                return Err(format!(
                    "dense needs a flat input but receives {}×{}×{}; add `flatten` or `gap` before it",
                    s[0], s[1], s[2]
                ));
            }
        },
    })
}

/// True when a kernel is larger than its (unpadded) input in either direction: Keras accepts
/// such a layer silently under `same` padding; sepnet's summary warns about it.
pub(crate) fn kernel_exceeds_input(window: &Window, input: Shape) -> bool {
    match input {
        Shape::Spatial([h, w, _]) => window.kernel[0] > h || window.kernel[1] > w,
        Shape::Flat(_) => false,
    }
}
