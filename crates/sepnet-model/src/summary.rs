//! Keras-style model summary: per-layer output shape, parameters and multiply-accumulates.
//!
//! Conventions (those of Keras's `model.summary()` and of the MobileNet paper):
//! - conv MACs = H_out · W_out · K_h · K_w · (C_in / groups) · C_out; dense MACs = in · out;
//!   BatchNorm, pooling, activations, dropout: 0;
//! - BatchNorm's moving mean and variance are non-trainable parameters.

use serde::Serialize;

use crate::layers::{Activation, PoolKind};
use crate::spec::{LayerShape, LayerSpec, NetworkSpec, Shape, ShapeError, infer_shapes};

/// Cost of a depthwise separable layer against the full convolution it replaces.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SeparableCost {
    /// MACs of the equivalent full convolution (same kernel, stride, input and output).
    pub full_conv_macs: u64,
    /// Parameters of that full convolution (without bias).
    pub full_conv_params: u64,
    /// This layer's MACs / the full convolution's.
    pub relative_macs: f64,
    /// The paper's closed form `1/N + 1/D_K²` (times the depth multiplier).
    pub closed_form: f64,
}

/// One row of the summary.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSummary {
    /// Keras-style unique name (`conv2d`, `conv2d_1`, ...).
    pub name: String,
    /// Keras class name (`Conv2D`, `SeparableConv2D`, ...).
    pub kind: String,
    /// Output shape for one image, `[h, w, c]` or `[n]`.
    pub output_shape: Shape,
    /// All parameters (trainable + non-trainable).
    pub params: u64,
    /// Trainable parameters.
    pub trainable_params: u64,
    /// Multiply-accumulates for one image.
    pub macs: u64,
    /// Present for separable layers and blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separable: Option<SeparableCost>,
    /// The layers inside a block (MobileNet's dw/bn/pw/bn), for display.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sublayers: Vec<LayerSummary>,
}

/// The whole summary; serialises to the `--json` object of `sepnet summary`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Model name.
    pub model: String,
    /// Input `[h, w, c]`.
    pub input: [usize; 3],
    /// All parameters.
    pub total_params: u64,
    /// Trainable parameters.
    pub trainable_params: u64,
    /// BatchNorm moving statistics.
    pub non_trainable_params: u64,
    /// Multiply-accumulates for one image.
    pub macs: u64,
    /// Bytes of the f32 weights.
    pub weight_bytes: u64,
    /// The architecture spec that rebuilds this network.
    pub spec: String,
    /// Rows, one per spec layer.
    pub layers: Vec<LayerSummary>,
    /// Things a user should know (e.g. a kernel larger than its input).
    pub warnings: Vec<String>,
}

impl Summary {
    /// Summarises a network spec.
    ///
    /// ```
    /// use sepnet_model::{spec::NetworkSpec, Summary};
    /// let spec = NetworkSpec::parse("sep:64:3:valid", [32, 32, 3]).unwrap();
    /// let summary = Summary::of(&spec).unwrap();
    /// assert_eq!(summary.total_params, 283);
    /// assert_eq!(summary.macs, 30 * 30 * (27 + 3 * 64));
    /// ```
    pub fn of(spec: &NetworkSpec) -> Result<Summary, ShapeError> {
        let shapes = infer_shapes(spec)?;
        let mut namer = Namer::default();
        let mut warnings = Vec::new();
        let layers: Vec<LayerSummary> = spec
            .layers
            .iter()
            .zip(&shapes)
            .map(|(layer, shape)| {
                let row = summarise(layer, shape, &mut namer);
                if let Some(window) = layer_window(layer)
                    && crate::spec::kernel_exceeds_input(window, shape.input)
                {
                    warnings.push(format!(
                        "{}: kernel {}×{} is larger than its {} input (Keras accepts this silently; \
                         most of the kernel only ever sees padding)",
                        row.name, window.kernel[0], window.kernel[1], shape.input
                    ));
                }
                row
            })
            .collect();
        let total_params: u64 = layers.iter().map(|l| l.params).sum();
        let trainable_params: u64 = layers.iter().map(|l| l.trainable_params).sum();
        Ok(Summary {
            model: spec.name.clone(),
            input: spec.input,
            total_params,
            trainable_params,
            non_trainable_params: total_params - trainable_params,
            macs: layers.iter().map(|l| l.macs).sum(),
            weight_bytes: total_params * 4,
            spec: spec.to_string(),
            layers,
            warnings,
        })
    }

    /// The `--json` form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary always serialises")
    }
}

fn layer_window(layer: &LayerSpec) -> Option<&crate::spec::Window> {
    match layer {
        LayerSpec::Conv { window, .. }
        | LayerSpec::Depthwise { window, .. }
        | LayerSpec::Separable { window, .. } => Some(window),
        _ => None,
    }
}

/// Hands out Keras-style names: `conv2d`, `conv2d_1`, `conv2d_2`, ...
#[derive(Default)]
struct Namer(std::collections::HashMap<&'static str, usize>);

impl Namer {
    fn name(&mut self, base: &'static str) -> String {
        let n = self.0.entry(base).or_insert(0);
        let name = if *n == 0 {
            base.to_string()
        } else {
            format!("{base}_{n}")
        };
        *n += 1;
        name
    }
}

fn row(
    name: String,
    kind: &str,
    output: Shape,
    params: u64,
    trainable: u64,
    macs: u64,
) -> LayerSummary {
    LayerSummary {
        name,
        kind: kind.into(),
        output_shape: output,
        params,
        trainable_params: trainable,
        macs,
        separable: None,
        sublayers: Vec::new(),
    }
}

fn separable_cost(
    macs: u64,
    [h, w]: [usize; 2],
    kernel: [usize; 2],
    c_in: usize,
    c_out: usize,
    multiplier: usize,
) -> SeparableCost {
    let k2 = (kernel[0] * kernel[1]) as u64;
    let full_conv_params = k2 * (c_in * c_out) as u64;
    let full_conv_macs = (h * w) as u64 * full_conv_params;
    let m = multiplier as f64;
    SeparableCost {
        full_conv_macs,
        full_conv_params,
        relative_macs: macs as f64 / full_conv_macs as f64,
        closed_form: m / c_out as f64 + m / k2 as f64,
    }
}

fn summarise(layer: &LayerSpec, shape: &LayerShape, namer: &mut Namer) -> LayerSummary {
    let out = shape.output;
    let c_in = shape.input.channels() as u64;
    let plane = match out {
        Shape::Spatial([h, w, _]) => (h * w) as u64,
        Shape::Flat(_) => 1,
    };
    let out_hw = match out {
        Shape::Spatial([h, w, _]) => [h, w],
        Shape::Flat(_) => [1, 1],
    };
    match layer {
        LayerSpec::Conv {
            filters,
            window,
            bias,
            ..
        } => {
            let f = *filters as u64;
            let k2 = (window.kernel[0] * window.kernel[1]) as u64;
            let params = k2 * c_in * f + if *bias { f } else { 0 };
            row(
                namer.name("conv2d"),
                "Conv2D",
                out,
                params,
                params,
                plane * k2 * c_in * f,
            )
        }
        LayerSpec::Depthwise {
            window,
            multiplier,
            bias,
            ..
        } => {
            let c_out = c_in * *multiplier as u64;
            let k2 = (window.kernel[0] * window.kernel[1]) as u64;
            let params = k2 * c_out + if *bias { c_out } else { 0 };
            row(
                namer.name("depthwise_conv2d"),
                "DepthwiseConv2D",
                out,
                params,
                params,
                plane * k2 * c_out,
            )
        }
        LayerSpec::Separable {
            filters,
            window,
            multiplier,
            bias,
            ..
        } => {
            let f = *filters as u64;
            let mid = c_in * *multiplier as u64;
            let k2 = (window.kernel[0] * window.kernel[1]) as u64;
            let params = k2 * mid + mid * f + if *bias { f } else { 0 };
            let macs = plane * (k2 * mid + mid * f);
            let mut r = row(
                namer.name("separable_conv2d"),
                "SeparableConv2D",
                out,
                params,
                params,
                macs,
            );
            r.separable = Some(separable_cost(
                macs,
                out_hw,
                window.kernel,
                c_in as usize,
                *filters,
                *multiplier,
            ));
            r
        }
        LayerSpec::DwSepBlock {
            filters,
            activation,
            ..
        } => {
            let f = *filters as u64;
            let name = namer.name("dwsep_block");
            let Shape::Spatial([h, w, _]) = out else {
                unreachable!("blocks output spatial shapes")
            };
            let mid = Shape::Spatial([h, w, c_in as usize]);
            let act = activation.name().unwrap_or("linear");
            let sub = |part: &str, kind: &str, shape, params, trainable, macs| {
                row(
                    format!("{name}.{part}"),
                    kind,
                    shape,
                    params,
                    trainable,
                    macs,
                )
            };
            let sublayers = vec![
                sub(
                    "conv_dw",
                    "DepthwiseConv2D",
                    mid,
                    9 * c_in,
                    9 * c_in,
                    plane * 9 * c_in,
                ),
                sub("bn_dw", "BatchNormalization", mid, 4 * c_in, 2 * c_in, 0),
                sub(&format!("{act}_dw"), "ReLU", mid, 0, 0, 0),
                sub(
                    "conv_pw",
                    "Conv2D",
                    out,
                    c_in * f,
                    c_in * f,
                    plane * c_in * f,
                ),
                sub("bn_pw", "BatchNormalization", out, 4 * f, 2 * f, 0),
                sub(&format!("{act}_pw"), "ReLU", out, 0, 0, 0),
            ];
            let params = sublayers.iter().map(|s| s.params).sum();
            let trainable = sublayers.iter().map(|s| s.trainable_params).sum();
            let macs = sublayers.iter().map(|s| s.macs).sum();
            let mut r = row(
                name,
                "DepthwiseSeparableBlock",
                out,
                params,
                trainable,
                macs,
            );
            r.separable = Some(separable_cost(
                macs,
                [h, w],
                [3, 3],
                c_in as usize,
                *filters,
                1,
            ));
            r.sublayers = sublayers;
            r
        }
        LayerSpec::BatchNorm => row(
            namer.name("batch_normalization"),
            "BatchNormalization",
            out,
            4 * c_in,
            2 * c_in,
            0,
        ),
        LayerSpec::Activation(act) => match act {
            Activation::Relu => row(namer.name("re_lu"), "ReLU", out, 0, 0, 0),
            Activation::Relu6 => row(namer.name("re_lu6"), "ReLU6", out, 0, 0, 0),
            Activation::Linear => row(namer.name("activation"), "Linear", out, 0, 0, 0),
        },
        LayerSpec::Pool {
            kind: PoolKind::Max,
            ..
        } => row(namer.name("max_pooling2d"), "MaxPooling2D", out, 0, 0, 0),
        LayerSpec::Pool {
            kind: PoolKind::Average,
            ..
        } => row(
            namer.name("average_pooling2d"),
            "AveragePooling2D",
            out,
            0,
            0,
            0,
        ),
        LayerSpec::GlobalAvgPool => row(
            namer.name("global_average_pooling2d"),
            "GlobalAveragePooling2D",
            out,
            0,
            0,
            0,
        ),
        LayerSpec::Flatten => row(namer.name("flatten"), "Flatten", out, 0, 0, 0),
        LayerSpec::Dense { units, bias, .. } => {
            let u = *units as u64;
            let params = c_in * u + if *bias { u } else { 0 };
            row(namer.name("dense"), "Dense", out, params, params, c_in * u)
        }
        LayerSpec::Dropout { .. } => row(namer.name("dropout"), "Dropout", out, 0, 0, 0),
    }
}

/// `1234567` → `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `568_700_000` → `568.7 M`.
pub fn human(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} K", n / 1e3)
    } else {
        format!("{n}")
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [h, w, c] = self.input;
        writeln!(f, "Model: \"{}\"   input {h}×{w}×{c}", self.model)?;
        writeln!(f, "spec:  {}", self.spec)?;
        let rule = "─".repeat(96);
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "{:<44} {:<16} {:>14} {:>18}",
            "Layer (type)", "Output shape", "Params", "MACs"
        )?;
        writeln!(f, "{rule}")?;
        let write_row = |f: &mut std::fmt::Formatter<'_>, r: &LayerSummary, indent: &str| {
            let label = format!("{indent}{} ({})", r.name, r.kind);
            writeln!(
                f,
                "{label:<44} {:<16} {:>14} {:>18}",
                r.output_shape.to_string(),
                group_thousands(r.params),
                group_thousands(r.macs)
            )
        };
        for r in &self.layers {
            write_row(f, r, "")?;
            for s in &r.sublayers {
                write_row(f, s, "  ")?;
            }
        }
        writeln!(f, "{}", "═".repeat(96))?;
        writeln!(
            f,
            "Total params:         {:>14} ({})",
            group_thousands(self.total_params),
            human(self.total_params)
        )?;
        writeln!(
            f,
            "Trainable params:     {:>14}",
            group_thousands(self.trainable_params)
        )?;
        writeln!(
            f,
            "Non-trainable params: {:>14}",
            group_thousands(self.non_trainable_params)
        )?;
        writeln!(
            f,
            "Total MACs:           {:>14} ({} mult-adds per image)",
            group_thousands(self.macs),
            human(self.macs)
        )?;
        writeln!(
            f,
            "Weight memory:        {:>14.2} MiB (f32)",
            self.weight_bytes as f64 / (1024.0 * 1024.0)
        )?;
        let separable: Vec<&LayerSummary> = self
            .layers
            .iter()
            .filter(|l| l.separable.is_some())
            .collect();
        if !separable.is_empty() {
            writeln!(
                f,
                "\nSeparable layers against the full convolution they replace:"
            )?;
            writeln!(
                f,
                "{:<24} {:>16} {:>16} {:>10} {:>22}",
                "layer", "MACs", "full-conv MACs", "ratio", "1/N + 1/D_K² (×mult)"
            )?;
            for l in separable {
                let s = l.separable.as_ref().expect("filtered");
                writeln!(
                    f,
                    "{:<24} {:>16} {:>16} {:>10.4} {:>22.4}",
                    l.name,
                    group_thousands(l.macs),
                    group_thousands(s.full_conv_macs),
                    s.relative_macs,
                    s.closed_form
                )?;
            }
        }
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}
