//! A trained run in formats other runtimes read: ONNX (with the class names and the input
//! preprocessing in its metadata) and safetensors (the PyTorch twin's `state_dict`), and a
//! sample of real test images with sepnet's own logits, for checking another runtime against.

use burn::tensor::{Device, Tensor};
use sepnet_data::{BatchConfig, Batches, Dataset, Split};
use sepnet_model::export::{self, Entry};

use crate::TrainError;
use crate::record::{Run, Weights};

/// What `sepnet export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Format {
    /// ONNX, opset 17, a dynamic batch dimension.
    Onnx,
    /// The weights as safetensors, named and laid out as the PyTorch twin's `state_dict`.
    Safetensors,
}

fn failed(what: &str) -> impl Fn(String) -> TrainError + '_ {
    move |e| TrainError::Checkpoint(format!("cannot export the {what}: {e}"))
}

impl Run {
    /// What a consumer of the ONNX file needs to know: classes, preprocessing, the network.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let [h, w, c] = self.config.network.input;
        let norm = &self.dataset.normalization;
        let json = |v: serde_json::Value| v.to_string();
        vec![
            (
                "classes".into(),
                json(serde_json::json!(self.dataset.classes)),
            ),
            (
                "input".into(),
                format!("images [batch, {c}, {h}, {w}], float32, NCHW"),
            ),
            (
                "preprocessing".into(),
                "x = (pixel / 255 - mean[c]) / std[c] per channel (pixel in 0..=255)".into(),
            ),
            (
                "normalization_mean".into(),
                json(serde_json::json!(norm.mean)),
            ),
            (
                "normalization_std".into(),
                json(serde_json::json!(norm.std)),
            ),
            (
                "output".into(),
                "logits [batch, classes] (softmax gives probabilities)".into(),
            ),
            ("spec".into(), self.config.network.spec.clone()),
            ("dataset".into(), self.dataset.name.clone()),
        ]
    }

    /// The run's trained network in `format`.
    pub fn export(&self, format: Format, weights: Weights) -> Result<Vec<u8>, TrainError> {
        let device = Device::flex();
        let network = self.network(&device, weights)?;
        let spec = self.config.network.network_spec()?;
        match format {
            Format::Onnx => {
                export::onnx(&spec, &network, &self.metadata()).map_err(failed("ONNX model"))
            }
            Format::Safetensors => export::safetensors(&spec, &network).map_err(failed("weights")),
        }
    }

    /// `n` test images of `data`, evenly spaced over the split (image folders list their
    /// images class by class, so the first `n` could all be one class), as the network takes
    /// them, their labels and the network's logits for them.
    pub fn sample(&self, data: &Dataset, n: usize, weights: Weights) -> Result<Sample, TrainError> {
        let device = Device::flex();
        let network = self.network(&device, weights)?;
        let (len, image_len) = (data.test.len(), data.image_len());
        let n = n.min(len);
        let picked: Vec<usize> = (0..n).map(|i| i * len / n).collect();
        let split = Split {
            images: picked
                .iter()
                .flat_map(|&i| &data.test.images[i * image_len..(i + 1) * image_len])
                .copied()
                .collect(),
            labels: picked.iter().map(|&i| data.test.labels[i]).collect(),
        };
        let norm = &self.dataset.normalization;
        let (mut images, mut logits) = (Vec::new(), Vec::new());
        for batch in Batches::new(&split, data.image_shape, norm, BatchConfig::eval(256), 0, 0) {
            images.extend_from_slice(&batch.images);
            let (x, _) = batch.into_tensors(&device);
            let y: Tensor<2> = network.forward(x);
            logits.extend(y.into_data().try_to_vec::<f32>().expect("f32 logits"));
        }
        let [h, w, c] = data.image_shape;
        Ok(Sample {
            shape: [n, c, h, w],
            images,
            labels: split.labels.iter().map(|&l| l as i64).collect(),
            classes: self.dataset.classes.len(),
            logits,
        })
    }
}

/// Real test images as a network takes them, with their labels and sepnet's logits.
#[derive(Clone, Debug)]
pub struct Sample {
    /// `[n, c, h, w]`.
    pub shape: [usize; 4],
    /// The normalised images, NCHW.
    pub images: Vec<f32>,
    /// Their classes.
    pub labels: Vec<i64>,
    /// Classes of the network.
    pub classes: usize,
    /// sepnet's logits, `[n, classes]`.
    pub logits: Vec<f32>,
}

impl Sample {
    /// As a safetensors file: `images`, `labels`, `logits`.
    pub fn to_safetensors(&self) -> Vec<u8> {
        let n = self.shape[0];
        export::safetensors_file(&[
            Entry::f32("images", self.shape.to_vec(), &self.images),
            Entry::i64("labels", vec![n], &self.labels),
            Entry::f32("logits", vec![n, self.classes], &self.logits),
        ])
    }
}
