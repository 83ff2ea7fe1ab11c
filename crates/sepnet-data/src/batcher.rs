//! Mini-batches assembled straight from a split's buffer into one NCHW `f32` buffer (one
//! tensor upload per batch): seeded shuffle per epoch, optional drop-last, and CIFAR-style
//! augmentation (random crop with 4-pixel zero padding, random horizontal flip).

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::dataset::Split;
use crate::normalize::Normalization;
use crate::rng::Rng;

/// Padding of the random crop, in pixels.
pub const CROP_PADDING: usize = 4;

/// How an epoch is cut into batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Visit images in a fresh seeded order each epoch.
    pub shuffle: bool,
    /// Drop the last batch when it is short.
    pub drop_last: bool,
    /// Random crop (4-pixel padding) and horizontal flip.
    pub augment: bool,
}

impl BatchConfig {
    /// Evaluation batches: in order, no augmentation, keep the last one.
    pub fn eval(batch_size: usize) -> Self {
        BatchConfig {
            batch_size,
            shuffle: false,
            drop_last: false,
            augment: false,
        }
    }
}

/// One batch on the host.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[n, c, h, w]` normalised pixels.
    pub images: Vec<f32>,
    /// `n` class indices.
    pub labels: Vec<i64>,
    /// `[n, c, h, w]`.
    pub shape: [usize; 4],
    /// Each image's position in its split.
    pub indices: Vec<u32>,
}

impl Batch {
    /// Uploads the batch, moving its buffers into the tensors (no copy): images
    /// `[n, c, h, w]` and labels `[n]`.
    pub fn into_tensors(self, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let n = self.labels.len();
        let images = Tensor::from_data(TensorData::new(self.images, self.shape), device);
        let labels = Tensor::from_data(TensorData::new(self.labels, [n]), device);
        (images, labels)
    }
}

/// The batches of one epoch.
pub struct Batches<'a> {
    split: &'a Split,
    shape: [usize; 3],
    tables: Vec<[f32; 256]>,
    order: Vec<u32>,
    next: usize,
    config: BatchConfig,
    rng: Rng,
    shard: Shard,
}

/// The part of every batch one process of a data-parallel job assembles: process `rank` of
/// `ranks` takes the `rank`-th of `ranks` contiguous, near-equal slices of each batch, so the
/// processes together see exactly the batches (and augmentations) of one process.
///
/// ```
/// use sepnet_data::Shard;
/// let second = Shard { rank: 1, ranks: 3 };
/// assert_eq!(second.range(10), 3..6);
/// assert_eq!(Shard::WHOLE.range(10), 0..10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This process, from 0.
    pub rank: usize,
    /// How many processes share each batch.
    pub ranks: usize,
}

impl Shard {
    /// The whole batch (one process).
    pub const WHOLE: Shard = Shard { rank: 0, ranks: 1 };

    /// The positions of this shard in a batch of `n` images.
    pub fn range(&self, n: usize) -> std::ops::Range<usize> {
        n * self.rank / self.ranks..n * (self.rank + 1) / self.ranks
    }
}

impl<'a> Batches<'a> {
    /// Batches of `split` (images `[h, w, c]`) for `epoch`; the same seed and epoch always
    /// give the same order and the same augmentations.
    pub fn new(
        split: &'a Split,
        shape: [usize; 3],
        norm: &Normalization,
        config: BatchConfig,
        seed: u64,
        epoch: u64,
    ) -> Self {
        assert!(config.batch_size > 0, "batch size must be positive");
        let order = if config.shuffle {
            Rng::new(seed, 0x5487_0000 + epoch).permutation(split.len())
        } else {
            (0..split.len() as u32).collect()
        };
        Batches {
            split,
            shape,
            tables: norm.tables(),
            order,
            next: 0,
            config,
            rng: Rng::new(seed, 0xA060_0000 + epoch),
            shard: Shard::WHOLE,
        }
    }

    /// The same batches, of which only `shard`'s part is assembled (the augmentation stream
    /// still advances over every image, so each image is augmented as one process would).
    pub fn shard(self, shard: Shard) -> Self {
        assert!(shard.rank < shard.ranks, "shard {shard:?} does not exist");
        Batches { shard, ..self }
    }

    /// Number of batches this epoch yields.
    pub fn count(&self) -> usize {
        let n = self.order.len();
        if self.config.drop_last {
            n / self.config.batch_size
        } else {
            n.div_ceil(self.config.batch_size)
        }
    }

    /// Passes over the next `batches` batches without assembling them: a resumed epoch goes
    /// on exactly where it stopped, the augmentation stream advanced as if they had been made.
    pub fn skip_batches(&mut self, batches: usize) {
        for _ in 0..batches {
            let n = (self.order.len() - self.next).min(self.config.batch_size);
            if self.config.augment {
                for _ in 0..n {
                    self.augmentation();
                }
            }
            self.next += n;
        }
    }

    /// One image's random crop offset `(dy, dx)` and flip.
    fn augmentation(&mut self) -> (isize, isize, bool) {
        let span = 2 * CROP_PADDING + 1;
        let pad = CROP_PADDING as isize;
        let dy = self.rng.below(span) as isize - pad;
        let dx = self.rng.below(span) as isize - pad;
        (dy, dx, self.rng.next_u64() & 1 == 1)
    }

    fn write_plain(&self, image: &[u8], out: &mut [f32]) {
        let plane = self.shape[0] * self.shape[1];
        for (c, (src, dst)) in image
            .chunks_exact(plane)
            .zip(out.chunks_exact_mut(plane))
            .enumerate()
        {
            let table = &self.tables[c];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = table[s as usize];
            }
        }
    }

    fn write_augmented(&self, image: &[u8], out: &mut [f32], (dy, dx, flip): (isize, isize, bool)) {
        let [h, w, _] = self.shape;
        for (c, (src, dst)) in image
            .chunks_exact(h * w)
            .zip(out.chunks_exact_mut(h * w))
            .enumerate()
        {
            let table = &self.tables[c];
            for y in 0..h {
                let sy = y as isize + dy;
                let row = &mut dst[y * w..(y + 1) * w];
                if sy < 0 || sy >= h as isize {
                    row.fill(table[0]);
                    continue;
                }
                let src_row = &src[sy as usize * w..(sy as usize + 1) * w];
                for (x, d) in row.iter_mut().enumerate() {
                    let sx = if flip {
                        (w - 1 - x) as isize
                    } else {
                        x as isize
                    } + dx;
                    *d = if sx < 0 || sx >= w as isize {
                        table[0]
                    } else {
                        table[src_row[sx as usize] as usize]
                    };
                }
            }
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let remaining = self.order.len() - self.next;
        let n = remaining.min(self.config.batch_size);
        if n == 0 || (self.config.drop_last && n < self.config.batch_size) {
            return None;
        }
        let [h, w, c] = self.shape;
        let image_len = h * w * c;
        let part = self.shard.range(n);
        let mut images = vec![0f32; part.len() * image_len];
        let mut labels = Vec::with_capacity(part.len());
        for k in 0..n {
            let augmentation = self.config.augment.then(|| self.augmentation());
            if !part.contains(&k) {
                continue;
            }
            let i = self.order[self.next + k] as usize;
            let image = &self.split.images[i * image_len..(i + 1) * image_len];
            let at = k - part.start;
            let out = &mut images[at * image_len..(at + 1) * image_len];
            match augmentation {
                Some(augmentation) => self.write_augmented(image, out, augmentation),
                None => self.write_plain(image, out),
            }
            labels.push(self.split.labels[i] as i64);
        }
        let indices = self.order[self.next + part.start..self.next + part.end].to_vec();
        self.next += n;
        Some(Batch {
            images,
            labels,
            shape: [part.len(), c, h, w],
            indices,
        })
    }
}
