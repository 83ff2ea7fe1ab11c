//! Per-channel normalisation, `(pixel / 255 − mean) / std`, applied when a batch is built.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Split};

/// How pixel bytes become network inputs.
///
/// ```
/// use sepnet_data::InputScaling;
/// let scaling: InputScaling = "unit".parse().unwrap();
/// assert_eq!(scaling, InputScaling::Unit);
/// assert_eq!(scaling.to_string(), "unit");
/// assert!("zscore".parse::<InputScaling>().unwrap_err().contains("standardize, unit or raw"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum InputScaling {
    /// `(pixel / 255 − mean) / std` per channel: the dataset's published constants, else
    /// computed from its training split.
    #[default]
    Standardize,
    /// `pixel / 255`, in [0, 1]: what Keras tutorials do with `x / 255.0`.
    Unit,
    /// The bytes as they are, 0–255: what Keras code does that passes `load_data()`'s arrays
    /// straight to `fit`.
    Raw,
}

impl InputScaling {
    const ALL: [InputScaling; 3] = [
        InputScaling::Standardize,
        InputScaling::Unit,
        InputScaling::Raw,
    ];

    /// The command-line and `config.json` name.
    pub fn name(self) -> &'static str {
        match self {
            InputScaling::Standardize => "standardize",
            InputScaling::Unit => "unit",
            InputScaling::Raw => "raw",
        }
    }
}

impl FromStr for InputScaling {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        InputScaling::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .ok_or_else(|| {
                format!("unknown input scaling `{text}`; expected standardize, unit or raw")
            })
    }
}

impl fmt::Display for InputScaling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-channel mean and standard deviation of pixel values scaled to [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Standard deviation per channel.
    pub std: Vec<f32>,
}

impl Normalization {
    /// The usual published constants for the named datasets, if known.
    pub fn standard(dataset: &str) -> Option<Normalization> {
        let (mean, std): (&[f32], &[f32]) = match dataset {
            "mnist" => (&[0.1307], &[0.3081]),
            "fashion-mnist" => (&[0.2860], &[0.3530]),
            "cifar10" => (&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]),
            _ => return None,
        };
        Some(Normalization {
            mean: mean.to_vec(),
            std: std.to_vec(),
        })
    }

    /// The normalisation `scaling` asks for on `dataset` (its training split supplies the
    /// statistics when standardising a dataset without published constants).
    pub fn for_dataset(scaling: InputScaling, dataset: &Dataset) -> Normalization {
        let channels = dataset.image_shape[2];
        let scale_only = |std: f32| Normalization {
            mean: vec![0.0; channels],
            std: vec![std; channels],
        };
        match scaling {
            InputScaling::Standardize => Normalization::standard(&dataset.name)
                .filter(|n| n.mean.len() == channels)
                .unwrap_or_else(|| Normalization::from_split(&dataset.train, channels)),
            InputScaling::Unit => scale_only(1.0),
            InputScaling::Raw => scale_only(1.0 / 255.0),
        }
    }

    /// Computed from a split (normally train), one pass over its bytes.
    pub fn from_split(split: &Split, channels: usize) -> Normalization {
        let image_len = split.images.len() / split.len().max(1);
        let plane = image_len / channels;
        let mut sums = vec![0f64; channels];
        let mut squares = vec![0f64; channels];
        for image in split.images.chunks_exact(image_len.max(1)) {
            for (c, channel) in image.chunks_exact(plane).enumerate() {
                for &v in channel {
                    let v = v as f64 / 255.0;
                    sums[c] += v;
                    squares[c] += v * v;
                }
            }
        }
        let n = (split.len() * plane).max(1) as f64;
        let mean: Vec<f64> = sums.iter().map(|s| s / n).collect();
        let std = squares
            .iter()
            .zip(&mean)
            .map(|(sq, m)| ((sq / n - m * m).max(1e-12)).sqrt() as f32)
            .collect();
        Normalization {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        }
    }

    /// A 256-entry lookup table per channel: byte → normalised value.
    pub fn tables(&self) -> Vec<[f32; 256]> {
        self.mean
            .iter()
            .zip(&self.std)
            .map(|(m, s)| std::array::from_fn(|v| (v as f32 / 255.0 - m) / s))
            .collect()
    }
}
