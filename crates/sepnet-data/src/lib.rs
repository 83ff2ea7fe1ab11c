//! # sepnet-data
//!
//! MNIST, Fashion-MNIST, CIFAR-10 (binary version, loose or `.tar.gz`) and image folders:
//! found locally or downloaded with checksums into a cache, validated strictly (every error
//! names the file and the problem), held as one contiguous `u8` buffer per split, and served
//! as normalised NCHW batches with seeded shuffling and augmentation.
//!
//! ```no_run
//! use sepnet_data::{BatchConfig, Batches, DatasetKind, Locator, Normalization};
//! let dataset = Locator::default().load(&DatasetKind::Mnist).unwrap();
//! let norm = Normalization::standard("mnist").unwrap();
//! let config = BatchConfig { batch_size: 128, shuffle: true, drop_last: false, augment: false };
//! for batch in Batches::new(&dataset.train, dataset.image_shape, &norm, config, 42, 0) {
//!     assert_eq!(batch.shape[1..], [1, 28, 28]);
//! }
//! ```

#![warn(missing_docs)]

pub mod atomic;
mod batcher;
pub mod cifar;
mod dataset;
pub mod download;
mod error;
pub mod idx;
pub mod image_folder;
pub mod mnist;
mod normalize;
mod rng;
mod sources;

pub use batcher::{Batch, BatchConfig, Batches, CROP_PADDING, Shard};
pub use dataset::{Dataset, Split};
pub use error::{DataError, Result};
pub use normalize::{InputScaling, Normalization};
pub use rng::Rng;
pub use sources::{DatasetKind, Locator, cache_root};
