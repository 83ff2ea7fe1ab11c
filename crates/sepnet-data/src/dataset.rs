//! A dataset in memory: one contiguous `u8` buffer per split (CHW per image) plus labels.

use crate::rng::Rng;

/// One split (train, validation or test).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    /// `len · c · h · w` bytes, each image channel-major (CHW), ready for NCHW batches.
    pub images: Vec<u8>,
    /// One class index per image.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Images of this split per class.
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[u32], image_len: usize) -> Split {
        let mut images = Vec::with_capacity(indices.len() * image_len);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let i = i as usize;
            images.extend_from_slice(&self.images[i * image_len..(i + 1) * image_len]);
            labels.push(self.labels[i]);
        }
        Split { images, labels }
    }
}

/// A labelled image dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// `mnist`, `fashion-mnist`, `cifar10`, or a folder's name.
    pub name: String,
    /// Class names, index = label.
    pub classes: Vec<String>,
    /// `[height, width, channels]` of every image.
    pub image_shape: [usize; 3],
    /// Training images.
    pub train: Split,
    /// Test images.
    pub test: Split,
}

impl Dataset {
    /// Refuses class lists a classifier cannot be trained on: fewer than two classes, or two
    /// with the same name (their rows in every table and confusion matrix would be
    /// indistinguishable).
    ///
    /// ```
    /// use sepnet_data::{Dataset, Split};
    /// let mut d = Dataset { name: "x".into(), classes: vec!["cat".into()], image_shape: [1, 1, 1],
    ///     train: Split::default(), test: Split::default() };
    /// assert!(d.check_classes().unwrap_err().contains("at least 2"));
    /// d.classes = vec!["cat".into(), " cat".into()];
    /// assert!(d.check_classes().unwrap_err().contains("twice"));
    /// ```
    pub fn check_classes(&self) -> Result<(), String> {
        if self.classes.len() < 2 {
            return Err(format!(
                "{} class(es) ({:?}): a classifier needs at least 2",
                self.classes.len(),
                self.classes
            ));
        }
        for (i, class) in self.classes.iter().enumerate() {
            let same = |other: &String| other.trim() == class.trim();
            if let Some(first) = self.classes[..i].iter().position(same) {
                return Err(format!(
                    "the class name {class:?} is given twice (classes {first} and {i}); every \
                     class needs its own name"
                ));
            }
        }
        Ok(())
    }

    /// A fast 64-bit checksum of every label and pixel of both splits: two datasets with the
    /// same checksum hold the same images (an image-folder cache or a resumed run checks it).
    pub fn checksum(&self) -> u64 {
        let mut hash: u64 = 0x243F_6A88_85A3_08D3;
        let parts = [
            &self.train.labels,
            &self.test.labels,
            &self.train.images,
            &self.test.images,
        ];
        for part in parts {
            let words = part.chunks_exact(8);
            let tail = words.remainder();
            for word in words {
                let v = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                hash = (hash ^ v)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(29);
            }
            for &b in tail {
                hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
            hash ^= part.len() as u64;
        }
        hash
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.image_shape.iter().product()
    }

    /// Carves `count` images out of train as a validation split, with a seeded shuffle:
    /// returns `(train, validation)`; the test split is untouched.
    pub fn validation_split(&self, count: usize, seed: u64) -> Result<(Split, Split), String> {
        if count >= self.train.len() {
            return Err(format!(
                "--val-split {count} leaves no training images (train has {})",
                self.train.len()
            ));
        }
        let order = Rng::new(seed, 0x5EED_5A11).permutation(self.train.len());
        let (val, train) = order.split_at(count);
        let (mut val, mut train) = (val.to_vec(), train.to_vec());
        // Keep the original order inside each part, so the split depends on the seed alone.
        val.sort_unstable();
        train.sort_unstable();
        Ok((
            self.train.select(&train, self.image_len()),
            self.train.select(&val, self.image_len()),
        ))
    }
}
