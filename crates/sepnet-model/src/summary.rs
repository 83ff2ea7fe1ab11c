//! Keras-style model summary: per-layer output shape, parameters and multiply-accumulates.
//!
//! Conventions (those of Keras's `model.summary()` and of the MobileNet paper):
//! - conv MACs = H_out · W_out · K_h · K_w · (C_in / groups) · C_out; dense MACs = in · out;
//!   BatchNorm, pooling, activations, dropout: 0;
//! - BatchNorm's moving mean and variance are non-trainable parameters.

use serde::Serialize;

use crate::spec::{NetworkSpec, Shape, ShapeError, infer_shapes};

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
                let row = layer.summarise(shape, &mut namer);
                if let Some(window) = layer.window()
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
        let total_params = layers.iter().map(|l| l.params).fold(0, u64::saturating_add);
        let trainable_params = layers
            .iter()
            .map(|l| l.trainable_params)
            .fold(0, u64::saturating_add);
        Ok(Summary {
            model: spec.name.clone(),
            input: spec.input,
            total_params,
            trainable_params,
            non_trainable_params: total_params - trainable_params,
            macs: layers.iter().map(|l| l.macs).fold(0, u64::saturating_add),
            weight_bytes: total_params.saturating_mul(4),
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

/// Hands out Keras-style names: `conv2d`, `conv2d_1`, `conv2d_2`, ...
#[derive(Default)]
pub struct Namer(std::collections::HashMap<&'static str, usize>);

impl Namer {
    /// The next name for `base`.
    pub fn name(&mut self, base: &'static str) -> String {
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

/// A summary row without sub-layers or a separable cost.
pub(crate) fn row(
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

/// One part of a block, for its summary rows.
pub(crate) enum Part<'a> {
    /// A convolution: (part, Keras class, output, weights, multiply-adds).
    Conv(&'a str, &'a str, Shape, u64, u64),
    /// A BatchNorm over the shape's channels: γ, β trainable, moving mean and variance not.
    Norm(&'a str, Shape),
    /// A parameter-free operation: (part, Keras class, output).
    Op(&'a str, &'a str, Shape),
}

/// A block's row: its parts as sub-rows named `block.part`, their sums as its own figures.
pub(crate) fn block_row(name: String, class: &str, output: Shape, parts: &[Part]) -> LayerSummary {
    let sub = |part: &str| format!("{name}.{part}");
    let sublayers: Vec<LayerSummary> = parts
        .iter()
        .map(|p| match *p {
            Part::Conv(part, kind, shape, weights, macs) => {
                row(sub(part), kind, shape, weights, weights, macs)
            }
            Part::Norm(part, shape) => {
                let c = shape.channels() as u64;
                row(sub(part), "BatchNormalization", shape, 4 * c, 2 * c, 0)
            }
            Part::Op(part, kind, shape) => row(sub(part), kind, shape, 0, 0, 0),
        })
        .collect();
    let sum = |f: fn(&LayerSummary) -> u64| sublayers.iter().map(f).fold(0, u64::saturating_add);
    let (params, trainable) = (sum(|s| s.params), sum(|s| s.trainable_params));
    let mut r = row(name, class, output, params, trainable, sum(|s| s.macs));
    r.sublayers = sublayers;
    r
}

/// A separable layer's cost against the full convolution with the same kernel, input and
/// output channels, on the same `plane` of output pixels.
pub(crate) fn separable_cost(
    macs: u64,
    plane: u64,
    kernel: [usize; 2],
    c_in: u64,
    c_out: u64,
    multiplier: usize,
) -> SeparableCost {
    let k2 = (kernel[0] * kernel[1]) as u64;
    let full_conv_params = k2.saturating_mul(c_in).saturating_mul(c_out);
    let full_conv_macs = plane.saturating_mul(full_conv_params);
    let m = multiplier as f64;
    SeparableCost {
        full_conv_macs,
        full_conv_params,
        relative_macs: macs as f64 / full_conv_macs.max(1) as f64,
        closed_form: m / c_out as f64 + m / k2 as f64,
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

type Out<'a, 'b> = &'a mut std::fmt::Formatter<'b>;

impl Summary {
    /// The layer table: one row per layer, blocks' parts indented under them.
    fn write_layers(&self, f: Out) -> std::fmt::Result {
        // The label column fits the longest "name (Class)", blocks' sub-layers included.
        let labels = self.layers.iter().flat_map(|r| {
            std::iter::once(r.name.len() + r.kind.len() + 3)
                .chain(r.sublayers.iter().map(|s| s.name.len() + s.kind.len() + 5))
        });
        let width = labels.max().unwrap_or(0).max(44);
        let rule = "─".repeat(width + 52);
        writeln!(f, "{rule}")?;
        let header = ("Layer (type)", "Output shape", "Params", "MACs");
        writeln!(
            f,
            "{:<width$} {:<16} {:>14} {:>18}",
            header.0, header.1, header.2, header.3
        )?;
        writeln!(f, "{rule}")?;
        let write_row = |f: Out, r: &LayerSummary, indent: &str| {
            let label = format!("{indent}{} ({})", r.name, r.kind);
            let (shape, params, macs) = (
                r.output_shape.to_string(),
                group_thousands(r.params),
                group_thousands(r.macs),
            );
            writeln!(f, "{label:<width$} {shape:<16} {params:>14} {macs:>18}")
        };
        for r in &self.layers {
            write_row(f, r, "")?;
            for s in &r.sublayers {
                write_row(f, s, "  ")?;
            }
        }
        writeln!(f, "{}", "═".repeat(width + 52))
    }

    /// The totals under the table.
    fn write_totals(&self, f: Out) -> std::fmt::Result {
        let (total, trainable) = (self.total_params, self.trainable_params);
        writeln!(
            f,
            "Total params:         {:>14} ({})",
            group_thousands(total),
            human(total)
        )?;
        writeln!(
            f,
            "Trainable params:     {:>14}",
            group_thousands(trainable)
        )?;
        let frozen = group_thousands(self.non_trainable_params);
        writeln!(f, "Non-trainable params: {frozen:>14}")?;
        let macs = (group_thousands(self.macs), human(self.macs));
        writeln!(
            f,
            "Total MACs:           {:>14} ({} mult-adds per image)",
            macs.0, macs.1
        )?;
        let mib = self.weight_bytes as f64 / (1024.0 * 1024.0);
        writeln!(f, "Weight memory:        {mib:>14.2} MiB (f32)")
    }

    /// Each separable layer against the full convolution it replaces, beside the closed form.
    fn write_separable(&self, f: Out) -> std::fmt::Result {
        let separable: Vec<&LayerSummary> = self
            .layers
            .iter()
            .filter(|l| l.separable.is_some())
            .collect();
        if separable.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "\nSeparable layers against the full convolution they replace:"
        )?;
        let header = (
            "layer",
            "MACs",
            "full-conv MACs",
            "ratio",
            "1/N + 1/D_K² (×mult)",
        );
        let (a, b, c, d, e) = header;
        writeln!(f, "{a:<24} {b:>16} {c:>16} {d:>10} {e:>22}")?;
        for l in separable {
            let s = l.separable.as_ref().expect("filtered");
            let (macs, full) = (group_thousands(l.macs), group_thousands(s.full_conv_macs));
            let (ratio, closed) = (s.relative_macs, s.closed_form);
            writeln!(
                f,
                "{:<24} {macs:>16} {full:>16} {ratio:>10.4} {closed:>22.4}",
                l.name
            )?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [h, w, c] = self.input;
        writeln!(f, "Model: \"{}\"   input {h}×{w}×{c}", self.model)?;
        writeln!(f, "spec:  {}", self.spec)?;
        self.write_layers(f)?;
        self.write_totals(f)?;
        self.write_separable(f)?;
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}
