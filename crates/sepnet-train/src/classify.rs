//! Classifying images with a trained run, as `sepnet predict` does: image files decoded,
//! resized to the network's input when they differ (and said so), normalised as in training,
//! and run in batches.

use std::path::{Path, PathBuf};

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use sepnet_data::{BatchConfig, Batches, Split};
use sepnet_model::Network;
use serde::Serialize;

use crate::record::{Run, Weights};
use crate::{DatasetInfo, TrainError};

/// Images per forward pass.
const BATCH: usize = 256;

/// A trained network with what it needs to read images: its input size, normalisation and
/// class names.
pub struct Classifier {
    network: Network,
    info: DatasetInfo,
    device: Device,
}

/// A class and its probability.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ranked {
    /// The class name.
    pub class: String,
    /// Its probability.
    pub probability: f32,
}

/// One image's most likely classes.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    /// The image file.
    pub image: PathBuf,
    /// The most likely classes, most likely first.
    pub top: Vec<Ranked>,
    /// Set when the image was resized to the network's input: its own `[width, height]`.
    pub resized_from: Option<[u32; 2]>,
}

impl Run {
    /// The run's network, ready to classify images on `device`.
    ///
    /// ```no_run
    /// use burn::tensor::Device;
    /// use sepnet_train::{Run, Weights};
    /// let classifier = Run::open("runs/hybrid".as_ref()).unwrap().classifier(&Device::flex(), Weights::Best).unwrap();
    /// for p in classifier.classify_files(&["digit.png".into()], 3).unwrap() {
    ///     println!("{}: {} {:.1}%", p.image.display(), p.top[0].class, 100.0 * p.top[0].probability);
    /// }
    /// ```
    pub fn classifier(&self, device: &Device, weights: Weights) -> Result<Classifier, TrainError> {
        Ok(Classifier {
            network: self.network(device, weights)?,
            info: self.dataset.clone(),
            device: device.clone(),
        })
    }
}

impl Classifier {
    /// The class names, index = class.
    pub fn classes(&self) -> &[String] {
        &self.info.classes
    }

    /// Class probabilities `[n, classes]` for images `[n, c, h, w]` already normalised.
    pub fn probabilities(&self, images: Tensor<4>) -> Tensor<2> {
        softmax(self.network.forward(images), 1)
    }

    /// The `top` most likely classes of each image file, in batches.
    pub fn classify_files(
        &self,
        files: &[PathBuf],
        top: usize,
    ) -> Result<Vec<Prediction>, TrainError> {
        let mut predictions = Vec::new();
        for chunk in files.chunks(BATCH) {
            let mut split = Split::default();
            let mut resized = Vec::new();
            for path in chunk {
                let (pixels, from) = load_image(path, self.info.image_shape)?;
                split.images.extend(pixels);
                split.labels.push(0);
                resized.push(from);
            }
            let config = BatchConfig::eval(chunk.len());
            let shape = self.info.image_shape;
            let batch = Batches::new(&split, shape, &self.info.normalization, config, 0, 0)
                .next()
                .expect("a batch of at least one image");
            let (images, _) = batch.into_tensors(&self.device);
            let probabilities: Vec<f32> = self
                .probabilities(images)
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32 probabilities");
            let rows = probabilities.chunks(self.info.classes.len());
            for ((path, row), from) in chunk.iter().zip(rows).zip(resized) {
                predictions.push(self.ranked(path, row, top, from));
            }
        }
        Ok(predictions)
    }

    fn ranked(&self, path: &Path, row: &[f32], top: usize, from: Option<[u32; 2]>) -> Prediction {
        let mut ranked: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Prediction {
            image: path.to_path_buf(),
            top: ranked
                .into_iter()
                .take(top)
                .map(|(i, probability)| Ranked {
                    class: self.info.classes[i].clone(),
                    probability,
                })
                .collect(),
            resized_from: from,
        }
    }
}

/// Decodes one image into CHW bytes of `[h, w, c]`; returns its own size when it was resized.
fn load_image(
    path: &Path,
    [h, w, c]: [usize; 3],
) -> Result<(Vec<u8>, Option<[u32; 2]>), TrainError> {
    let image = image::open(path).map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        problem: format!("cannot decode the image (PNG or JPEG expected): {e}"),
    })?;
    let own = [image.width(), image.height()];
    let resized = own != [w as u32, h as u32];
    let image = if resized {
        image.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle)
    } else {
        image
    };
    let pixels = if c == 1 {
        image.to_luma8().into_raw()
    } else {
        let rgb = image.to_rgb8().into_raw();
        (0..3)
            .flat_map(|ch| rgb.iter().skip(ch).step_by(3).copied().collect::<Vec<_>>())
            .collect()
    };
    Ok((pixels, resized.then_some(own)))
}
