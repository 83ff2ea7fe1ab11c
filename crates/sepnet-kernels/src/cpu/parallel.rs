//! Splitting a batch across threads: a sum over its images, and when images alone are too
//! few to keep every thread busy.

use std::ops::Range;

use rayon::prelude::*;

/// Splits `batch` images into one contiguous share per thread, runs `partial` on each share's
/// image range (a vector of `size` values), and adds the partial results in image order, so
/// the total does not depend on how rayon scheduled the work. Weight gradients are built
/// this way: per-image contributions accumulated inside a share, shares added once.
pub fn sum_over_batch(
    batch: usize,
    size: usize,
    partial: impl Fn(Range<usize>) -> Vec<f32> + Sync,
) -> Vec<f32> {
    let per_share = batch.div_ceil(rayon::current_num_threads()).max(1);
    let shares: Vec<Vec<f32>> = (0..batch.div_ceil(per_share))
        .into_par_iter()
        .map(|s| partial(s * per_share..((s + 1) * per_share).min(batch)))
        .collect();
    shares
        .into_iter()
        .reduce(|mut total, share| {
            total.iter_mut().zip(&share).for_each(|(t, s)| *t += s);
            total
        })
        .unwrap_or_else(|| vec![0.0; size])
}

/// Whether a batch has fewer images than threads, so work split by image would leave threads
/// idle (batch-1 inference): kernels then split inside an image instead.
pub fn few_images(batch: usize) -> bool {
    batch < rayon::current_num_threads()
}
