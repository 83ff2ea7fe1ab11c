//! MNIST and Fashion-MNIST from their four IDX files.

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result};
use crate::idx;

/// The four files, in the order train images, train labels, test images, test labels.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Fashion-MNIST's class names.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Where one of the files is in `dir`: gzip'd (`.gz`) or raw.
pub fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// True when `dir` holds all four files.
pub fn present(dir: &Path) -> bool {
    FILES.iter().all(|stem| find_file(dir, stem).is_some())
}

fn split(dir: &Path, images: &str, labels: &str) -> Result<(Split, [usize; 2])> {
    let missing = |stem: &str| DataError::invalid(dir, format!("missing {stem}.gz (or {stem})"));
    let images_path = find_file(dir, images).ok_or_else(|| missing(images))?;
    let labels_path = find_file(dir, labels).ok_or_else(|| missing(labels))?;
    let (count, rows, cols, pixels) = idx::read_images(&images_path)?;
    let labels = idx::read_labels(&labels_path, 10)?;
    if labels.len() != count {
        return Err(DataError::invalid(
            &labels_path,
            format!(
                "{} labels for {count} images in {}",
                labels.len(),
                images_path.display()
            ),
        ));
    }
    Ok((
        Split {
            images: pixels,
            labels,
        },
        [rows, cols],
    ))
}

/// Loads a folder holding the four IDX files. `name` is `mnist` or `fashion-mnist`.
pub fn load(dir: &Path, name: &str) -> Result<Dataset> {
    let (train, train_size) = split(dir, FILES[0], FILES[1])?;
    let (test, test_size) = split(dir, FILES[2], FILES[3])?;
    if train_size != test_size {
        return Err(DataError::invalid(
            dir,
            format!("train images are {train_size:?}, test images {test_size:?}"),
        ));
    }
    let classes = match name {
        "fashion-mnist" => FASHION_CLASSES.iter().map(|c| c.to_string()).collect(),
        _ => (0..10).map(|d| d.to_string()).collect(),
    };
    Ok(Dataset {
        name: name.into(),
        classes,
        image_shape: [train_size[0], train_size[1], 1],
        train,
        test,
    })
}
