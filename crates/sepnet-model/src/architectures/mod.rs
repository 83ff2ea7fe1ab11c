//! The built-in models, by name, and the options that shape them.

pub mod efficientnet;
pub mod mnist;
pub mod mobilenet;
pub mod mobilenet_v2;
pub mod mobilenet_v3;
pub mod vgg;

use crate::layers::DepthwiseFans;
use crate::spec::{LayerSpec, NetworkSpec, SpecError, infer_shapes, parse_layers_unchecked};

/// Options a user can apply to a built-in model (or to a spec).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ModelOptions {
    /// MobileNet width multiplier α in (0, 1].
    pub alpha: f64,
    /// MobileNet resolution multiplier ρ in (0, 1].
    pub rho: f64,
    /// Number of classes (replaces the final dense layer's units).
    pub classes: Option<usize>,
    /// Input `[h, w, c]`, overriding the model's own.
    pub input: Option<[usize; 3]>,
    /// VGG block list `(filters, convolutions)`.
    pub vgg_blocks: Option<Vec<(usize, usize)>>,
    /// Initialisation fans for every depthwise kernel (`None`: as the model or spec says).
    pub depthwise_fans: Option<DepthwiseFans>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            alpha: 1.0,
            rho: 1.0,
            classes: None,
            input: None,
            vgg_blocks: None,
            depthwise_fans: None,
        }
    }
}

/// A named model sepnet knows how to build.
pub struct BuiltinModel {
    /// CLI name.
    pub name: &'static str,
    /// One line on what it is.
    pub description: &'static str,
    /// Its natural input `[h, w, c]` at ρ = 1.
    pub input: [usize; 3],
    /// Its natural number of classes.
    pub classes: usize,
    /// Builds the layers for the given options (classes already resolved).
    build: fn(&ModelOptions, usize) -> Vec<LayerSpec>,
}

const MNIST: [usize; 3] = [28, 28, 1];
const CIFAR: [usize; 3] = [32, 32, 3];
const IMAGENET: [usize; 3] = [224, 224, 3];

fn vgg(options: &ModelOptions, classes: usize, style: vgg::ConvStyle) -> Vec<LayerSpec> {
    let blocks = options.vgg_blocks.as_deref().unwrap_or(&vgg::CIFAR_BLOCKS);
    vgg::layers(blocks, style, classes)
}

/// Every built-in model, in the order `sepnet models` lists them.
pub const BUILTIN_MODELS: &[BuiltinModel] = &[
    BuiltinModel {
        name: "mnist-full",
        description: "MNIST article baseline: Conv2D(32,3×3)+pool, Conv2D(64,3×3)+pool, Dense 512, Dense 10",
        input: MNIST,
        classes: 10,
        build: |_, c| mnist::full(c),
    },
    BuiltinModel {
        name: "mnist-separable",
        description: "mnist-full with both convolutions SeparableConv2D (3×3)",
        input: MNIST,
        classes: 10,
        build: |_, c| mnist::separable_all(c),
    },
    BuiltinModel {
        name: "mnist-hybrid",
        description: "mnist-full with the second convolution SeparableConv2D",
        input: MNIST,
        classes: 10,
        build: |_, c| mnist::hybrid(c),
    },
    BuiltinModel {
        name: "mnist-depthwise-literal",
        description: "what the article's Keras code really built: both convs DepthwiseConv2D with a 32×32 / 64×64 kernel, stride 3 (positional args read as kernel, stride), multiplier 1, bias",
        input: MNIST,
        classes: 10,
        build: |_, c| mnist::depthwise_literal(c),
    },
    BuiltinModel {
        name: "mnist-hybrid-literal",
        description: "the article's hybrid as really built: Conv2D(32,3×3), then DepthwiseConv2D with a 64×64 kernel, stride 3, multiplier 1, bias",
        input: MNIST,
        classes: 10,
        build: |_, c| mnist::hybrid_literal(c),
    },
    BuiltinModel {
        name: "vgg-full",
        description: "CIFAR-10 VGG blocks (64,2),(128,2),(256,2) of 3×3 Conv2D+ReLU, pools, Dense 10",
        input: CIFAR,
        classes: 10,
        build: |o, c| vgg(o, c, vgg::ConvStyle::Full),
    },
    BuiltinModel {
        name: "vgg-separable",
        description: "vgg-full with every convolution SeparableConv2D",
        input: CIFAR,
        classes: 10,
        build: |o, c| vgg(o, c, vgg::ConvStyle::Separable),
    },
    BuiltinModel {
        name: "vgg-hybrid",
        description: "vgg-full with the first convolution plain and the rest SeparableConv2D",
        input: CIFAR,
        classes: 10,
        build: |o, c| vgg(o, c, vgg::ConvStyle::Hybrid),
    },
    BuiltinModel {
        name: "mobilenet",
        description: "MobileNet v1, CIFAR layout (32×32, stem stride 1, ends at 2×2), --alpha/--rho",
        input: CIFAR,
        classes: 10,
        build: |o, c| mobilenet::layers(mobilenet::Layout::Cifar, o.alpha, c, false),
    },
    BuiltinModel {
        name: "mobilenet-full",
        description: "mobilenet with every depthwise separable block one full 3×3 Conv+BN+ReLU (paper's Conv MobileNet)",
        input: CIFAR,
        classes: 10,
        build: |o, c| mobilenet::layers(mobilenet::Layout::Cifar, o.alpha, c, true),
    },
    BuiltinModel {
        name: "mobilenet-v2",
        description: "MobileNet v2, CIFAR layout (32×32: stem and first stride-2 stage at stride 1, ends at 4×4), --alpha/--rho",
        input: CIFAR,
        classes: 10,
        build: |o, c| mobilenet_v2::layers(mobilenet::Layout::Cifar, o.alpha, c),
    },
    BuiltinModel {
        name: "mobilenet-imagenet",
        description: "MobileNet v1, ImageNet layout (224×224, stem stride 2, 1000 classes), --alpha/--rho",
        input: IMAGENET,
        classes: 1000,
        build: |o, c| mobilenet::layers(mobilenet::Layout::ImageNet, o.alpha, c, false),
    },
    BuiltinModel {
        name: "mobilenet-full-imagenet",
        description: "mobilenet-imagenet's full-convolution twin (paper's Conv MobileNet)",
        input: IMAGENET,
        classes: 1000,
        build: |o, c| mobilenet::layers(mobilenet::Layout::ImageNet, o.alpha, c, true),
    },
    BuiltinModel {
        name: "mobilenet-v2-imagenet",
        description: "MobileNet v2, ImageNet layout (224×224, 1000 classes), --alpha/--rho; paper: 3.4 M params, 300 M mult-adds",
        input: IMAGENET,
        classes: 1000,
        build: |o, c| mobilenet_v2::layers(mobilenet::Layout::ImageNet, o.alpha, c),
    },
    BuiltinModel {
        name: "mobilenet-v3-small",
        description: "MobileNet v3 Small (224×224, 1000 classes; hard swish, squeeze-and-excitation), --alpha; Keras 2,554,968 params",
        input: IMAGENET,
        classes: 1000,
        build: |o, c| {
            mobilenet_v3::layers(
                mobilenet_v3::Size::Small,
                mobilenet::Layout::ImageNet,
                o.alpha,
                c,
            )
        },
    },
    BuiltinModel {
        name: "mobilenet-v3-large",
        description: "MobileNet v3 Large (224×224, 1000 classes), --alpha; Keras 5,507,432 params",
        input: IMAGENET,
        classes: 1000,
        build: |o, c| {
            mobilenet_v3::layers(
                mobilenet_v3::Size::Large,
                mobilenet::Layout::ImageNet,
                o.alpha,
                c,
            )
        },
    },
    BuiltinModel {
        name: "efficientnet-b0",
        description: "EfficientNet-B0 (224×224, 1000 classes; MBConv, SiLU, squeeze-and-excitation), --alpha; Keras 5,330,571 params (7 in its Normalization layer)",
        input: IMAGENET,
        classes: 1000,
        build: |o, c| efficientnet::layers(mobilenet::Layout::ImageNet, o.alpha, c),
    },
    BuiltinModel {
        name: "mobilenet-v3-small-cifar",
        description: "MobileNet v3 Small, CIFAR layout (32×32: stem and first stride-2 block at stride 1, ends at 4×4)",
        input: CIFAR,
        classes: 10,
        build: |o, c| {
            mobilenet_v3::layers(
                mobilenet_v3::Size::Small,
                mobilenet::Layout::Cifar,
                o.alpha,
                c,
            )
        },
    },
    BuiltinModel {
        name: "mobilenet-v3-large-cifar",
        description: "MobileNet v3 Large, CIFAR layout (32×32, ends at 4×4)",
        input: CIFAR,
        classes: 10,
        build: |o, c| {
            mobilenet_v3::layers(
                mobilenet_v3::Size::Large,
                mobilenet::Layout::Cifar,
                o.alpha,
                c,
            )
        },
    },
    BuiltinModel {
        name: "efficientnet-b0-cifar",
        description: "EfficientNet-B0, CIFAR layout (32×32: stem and first stride-2 stage at stride 1, ends at 4×4)",
        input: CIFAR,
        classes: 10,
        build: |o, c| efficientnet::layers(mobilenet::Layout::Cifar, o.alpha, c),
    },
];

/// Why a model could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Neither a built-in name nor a spec.
    #[error(
        "unknown model `{name}`; built-in models: {known} (or give an architecture spec such as `conv:32:3:relu,pool,flatten,dense:10`)"
    )]
    Unknown {
        /// What was asked for.
        name: String,
        /// The built-in names.
        known: String,
    },
    /// An option out of range.
    #[error("{0}")]
    Option(String),
    /// A spec that does not parse or fit.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// Looks up a built-in model by name.
pub fn find(name: &str) -> Option<&'static BuiltinModel> {
    BUILTIN_MODELS.iter().find(|m| m.name == name)
}

impl BuiltinModel {
    /// The network for these options.
    pub fn spec(&self, options: &ModelOptions) -> Result<NetworkSpec, ModelError> {
        check_multiplier("--alpha", options.alpha)?;
        check_multiplier("--rho", options.rho)?;
        let is_mobilenet = self.name.starts_with("mobilenet");
        if !is_mobilenet && (options.alpha != 1.0 || options.rho != 1.0) {
            return Err(ModelError::Option(format!(
                "--alpha and --rho apply to the MobileNet models, not to `{}`",
                self.name
            )));
        }
        if options.vgg_blocks.is_some() && !self.name.starts_with("vgg") {
            return Err(ModelError::Option(format!(
                "--blocks applies to the VGG models, not to `{}`",
                self.name
            )));
        }
        let classes = options.classes.unwrap_or(self.classes);
        check_classes(classes)?;
        let [h, w, c] = self.input;
        let side = |s: usize| ((s as f64 * options.rho).round() as usize).max(1);
        let input = options.input.unwrap_or([side(h), side(w), c]);
        let spec = NetworkSpec {
            name: self.name.to_string(),
            input,
            layers: (self.build)(options, classes),
        };
        check_fits(spec)
    }
}

/// A class count a dense head can have: 1 to [`MAX_SIZE`](crate::kinds::args::MAX_SIZE).
fn check_classes(classes: usize) -> Result<(), ModelError> {
    let most = crate::kinds::args::MAX_SIZE;
    if (1..=most).contains(&classes) {
        Ok(())
    } else {
        Err(ModelError::Option(format!(
            "--classes must be between 1 and {most}, got {classes}"
        )))
    }
}

fn check_multiplier(flag: &str, value: f64) -> Result<(), ModelError> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(ModelError::Option(format!(
            "{flag} must be in (0, 1], got {value}"
        )))
    }
}

/// Checks that every layer fits its input (e.g. after `--input` shrank it).
fn check_fits(spec: NetworkSpec) -> Result<NetworkSpec, ModelError> {
    match infer_shapes(&spec) {
        Ok(_) => Ok(spec),
        Err(err) => {
            let text = spec.to_string();
            Err(ModelError::Spec(crate::spec::locate_error(&text, err)))
        }
    }
}

/// A built-in name or an architecture spec, turned into a network.
///
/// ```
/// use sepnet_model::{resolve_model, ModelOptions};
/// let vgg = resolve_model("vgg-full", &ModelOptions::default()).unwrap();
/// assert_eq!(vgg.input, [32, 32, 3]);
/// let custom = resolve_model("conv:8:3,gap,dense:2", &ModelOptions { input: Some([16, 16, 3]), ..Default::default() }).unwrap();
/// assert_eq!(custom.classes(), Some(2));
/// ```
pub fn resolve_model(
    name_or_spec: &str,
    options: &ModelOptions,
) -> Result<NetworkSpec, ModelError> {
    let spec = resolve_layers(name_or_spec, options)?;
    Ok(match options.depthwise_fans {
        Some(fans) => spec.with_depthwise_fans(fans),
        None => spec,
    })
}

fn resolve_layers(name_or_spec: &str, options: &ModelOptions) -> Result<NetworkSpec, ModelError> {
    if let Some(model) = find(name_or_spec) {
        return model.spec(options);
    }
    let looks_like_spec = name_or_spec.contains(':') || name_or_spec.contains(',');
    if !looks_like_spec {
        let known: Vec<&str> = BUILTIN_MODELS.iter().map(|m| m.name).collect();
        return Err(ModelError::Unknown {
            name: name_or_spec.into(),
            known: known.join(", "),
        });
    }
    if options.alpha != 1.0 || options.rho != 1.0 || options.vgg_blocks.is_some() {
        return Err(ModelError::Option(
            "--alpha, --rho and --blocks apply to built-in models, not to specs".into(),
        ));
    }
    let input = options.input.unwrap_or(MNIST);
    let mut spec = NetworkSpec::parse(name_or_spec, input)?;
    if let Some(classes) = options.classes {
        check_classes(classes)?;
        spec = check_fits(spec.with_classes(classes))?;
    }
    Ok(spec)
}

/// How a built-in model was changed to fit a dataset (empty for a spec, which must fit as
/// written).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Adaptation {
    /// `(built-in, dataset)` input when they differ.
    pub input: Option<([usize; 3], [usize; 3])>,
    /// `(built-in, dataset)` classes when they differ.
    pub classes: Option<(usize, usize)>,
}

impl Adaptation {
    /// True when the built-in was used as it is.
    pub fn is_none(&self) -> bool {
        self.input.is_none() && self.classes.is_none()
    }
}

impl std::fmt::Display for Adaptation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = |[h, w, c]: [usize; 3]| format!("{h}×{w}×{c}");
        let mut parts = Vec::new();
        if let Some((from, to)) = self.input {
            parts.push(format!("input {} → {}", side(from), side(to)));
        }
        if let Some((from, to)) = self.classes {
            parts.push(format!("classes {from} → {to}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// The network to train on a dataset of `input` images and `classes` classes.
///
/// A built-in model adapts its input and head to the dataset (that is what a built-in name
/// promises) and says how in the returned [`Adaptation`]; `--input` or `--classes` pinned to
/// other values are refused. A spec is the network asked for: it must take the dataset's
/// images and end in `dense:<classes>`, or the error points at the layer.
///
/// ```
/// use sepnet_model::{ModelOptions, architectures::resolve_for_dataset};
/// let (spec, adapted) = resolve_for_dataset("mnist-full", &ModelOptions::default(), [32, 32, 3], 100).unwrap();
/// assert_eq!(spec.classes(), Some(100));
/// assert_eq!(adapted.to_string(), "input 28×28×1 → 32×32×3, classes 10 → 100");
/// let err = resolve_for_dataset("conv:8:3,gap,dense:5", &ModelOptions::default(), [28, 28, 1], 10).unwrap_err();
/// assert!(err.to_string().contains("ends in 5 classes but the dataset has 10"));
/// ```
pub fn resolve_for_dataset(
    name_or_spec: &str,
    options: &ModelOptions,
    input: [usize; 3],
    classes: usize,
) -> Result<(NetworkSpec, Adaptation), ModelError> {
    let pinned = |flag: &str, given: String, dataset: String| {
        ModelError::Option(format!(
            "{flag} {given} does not match the dataset ({dataset}); leave it out, the dataset sets it"
        ))
    };
    if let Some(c) = options.classes.filter(|&c| c != classes) {
        return Err(pinned(
            "--classes",
            c.to_string(),
            format!("{classes} classes"),
        ));
    }
    if let Some(i) = options.input.filter(|&i| i != input) {
        return Err(pinned(
            "--input",
            format!("{i:?}"),
            format!("{input:?} images"),
        ));
    }
    let fitted = ModelOptions {
        classes: Some(classes),
        input: Some(input),
        ..options.clone()
    };
    if let Some(model) = find(name_or_spec) {
        let side = |s: usize| ((s as f64 * options.rho).round() as usize).max(1);
        let natural = [side(model.input[0]), side(model.input[1]), model.input[2]];
        let adaptation = Adaptation {
            input: (natural != input).then_some((natural, input)),
            classes: (model.classes != classes).then_some((model.classes, classes)),
        };
        return Ok((resolve_model(name_or_spec, &fitted)?, adaptation));
    }
    let as_written = ModelOptions {
        classes: None,
        ..fitted
    };
    let spec = resolve_model(name_or_spec, &as_written)?;
    check_head(name_or_spec, &spec, classes)?;
    Ok((spec, Adaptation::default()))
}

/// A spec's head must be `dense:<classes>`; the error points at its last layer.
fn check_head(text: &str, spec: &NetworkSpec, classes: usize) -> Result<(), ModelError> {
    let head = spec.classes();
    if head != Some(classes) {
        let message = match head {
            Some(units) => format!(
                "the network ends in {units} classes but the dataset has {classes}; end it with `dense:{classes}`"
            ),
            None => format!("a classifier must end with `dense:{classes}` for this dataset"),
        };
        let last = spec.layers.len() - 1;
        let err = crate::spec::ShapeError {
            layer: last,
            message,
        };
        return Err(ModelError::Spec(crate::spec::locate_error(text, err)));
    }
    Ok(())
}

/// Parses spec text that sepnet itself wrote (built-in tables).
fn layers_of(text: &str) -> Vec<LayerSpec> {
    parse_layers_unchecked(text).expect("built-in specs are valid")
}
