//! Loss, accuracy, per-class accuracy and the confusion matrix of a model on a split.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Device;
use sepnet_data::{BatchConfig, Batches, Normalization, Split};
use sepnet_model::Classifier;
use serde::{Deserialize, Serialize};

/// How a model does on one split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of images classified correctly.
    pub accuracy: f64,
    /// Accuracy within each true class.
    pub per_class_accuracy: Vec<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
    /// Images evaluated.
    pub images: usize,
    /// The predicted class of each image, in the split's order.
    #[serde(skip)]
    pub predicted: Vec<u32>,
}

impl Evaluation {
    /// Fraction of images on which this evaluation and `other`, of the same split, predict the
    /// same class.
    pub fn agreement(&self, other: &Evaluation) -> f64 {
        let same = self
            .predicted
            .iter()
            .zip(&other.predicted)
            .filter(|(a, b)| a == b)
            .count();
        same as f64 / self.predicted.len().max(1) as f64
    }
}

/// Evaluates `model` (already in inference mode, on a plain device) on `split`.
pub fn evaluate<M: Classifier>(
    model: &M,
    split: &Split,
    shape: [usize; 3],
    norm: &Normalization,
    classes: usize,
    device: &Device,
) -> Evaluation {
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut loss_sum = 0.0;
    let mut truths = Vec::with_capacity(split.len());
    let mut predicted = Vec::with_capacity(split.len());
    for batch in Batches::new(split, shape, norm, BatchConfig::eval(500), 0, 0) {
        let n = batch.labels.len();
        truths.extend(batch.labels.iter().map(|&l| l as u32));
        let (images, labels) = batch.into_tensors(device);
        let logits = model.forward(images);
        loss_sum += loss_fn.forward(logits.clone(), labels).into_scalar::<f64>() * n as f64;
        let guesses = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("int data");
        predicted.extend(guesses.into_iter().map(|g| g as u32));
    }
    Evaluation::tally(&truths, predicted, loss_sum, classes)
}

impl Evaluation {
    /// The evaluation of `predicted` classes against the `truths`, with the summed loss.
    pub fn tally(truths: &[u32], predicted: Vec<u32>, loss_sum: f64, classes: usize) -> Evaluation {
        let mut confusion = vec![vec![0u64; classes]; classes];
        for (&truth, &guess) in truths.iter().zip(&predicted) {
            confusion[truth as usize][guess as usize] += 1;
        }
        let images = truths.len();
        let correct: u64 = (0..classes).map(|c| confusion[c][c]).sum();
        let per_class_accuracy = confusion
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let total: u64 = row.iter().sum();
                if total == 0 {
                    0.0
                } else {
                    row[c] as f64 / total as f64
                }
            })
            .collect();
        Evaluation {
            loss: loss_sum / images.max(1) as f64,
            accuracy: correct as f64 / images.max(1) as f64,
            per_class_accuracy,
            confusion,
            images,
            predicted,
        }
    }
}
