//! `x · w` for a few rows of `x` (fewer images than threads: batch-1 inference) by a large
//! weight matrix `w`, its columns split across threads.
//!
//! With one row the product is a matrix-vector product: each weight is read once and used
//! once, so its speed is the speed weights stream from memory. burn-flex runs products under
//! 192³ multiply-adds on one thread, whose bandwidth alone then streams the weights:
//! mnist-full's 3136 × 512 dense layer (6.4 MB) took 0.26 ms of its 0.55 ms batch-1 forward
//! pass. Here each thread computes a band of columns, streaming its part of every row.
//! (The transposed product `yᵀ = wᵀ · xᵀ` in bands of its rows, `Threads::RowBands` of
//! `gemm.rs`, would need no banding of its own, but gemm packs the transposed weights first:
//! mnist-full's batch-1 forward pass took 0.62 ms so against 0.45–0.50.)

use rayon::prelude::*;

use super::gemm::{Matrix, matmul};

/// Multiply-adds from which the columns are split: below, one thread is as fast (a split's
/// fixed cost, tens of microseconds, is what a few hundred thousand multiply-adds take).
const SPLIT_MIN_MACS: usize = 1 << 18;

/// Columns per band are a multiple of this: whole cache lines of each weight row.
const BAND_ALIGN: usize = 16;

/// The sizes of `x [rows, inner] · w [inner, cols]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Rows of `x` (images).
    pub rows: usize,
    /// Columns of `x`, rows of `w` (input features).
    pub inner: usize,
    /// Columns of `w` (output features).
    pub cols: usize,
}

/// Whether [`forward`] pays over one thread's product for `d`: rows fewer than threads and
/// enough multiply-adds to split.
pub fn applies(d: Dims) -> bool {
    super::parallel::few_images(d.rows) && d.rows * d.inner * d.cols >= SPLIT_MIN_MACS
}

/// `x [rows, inner] · w [inner, cols]`, row-major, in bands of columns across threads.
///
/// # Panics
/// When a slice's length disagrees with `d`.
pub fn forward(x: &[f32], w: &[f32], d: Dims) -> Vec<f32> {
    assert_eq!(x.len(), d.rows * d.inner, "x");
    assert_eq!(w.len(), d.inner * d.cols, "w");
    let threads = rayon::current_num_threads().max(1);
    let band = d.cols.div_ceil(threads).next_multiple_of(BAND_ALIGN).max(1);
    let bands: Vec<Vec<f32>> = (0..d.cols.div_ceil(band))
        .into_par_iter()
        .map(|b| {
            let first = b * band;
            let width = band.min(d.cols - first);
            let weights = Matrix {
                data: &w[first..],
                rows: d.inner,
                cols: width,
                row_stride: d.cols,
                col_stride: 1,
            };
            let mut out = vec![0.0; d.rows * width];
            matmul(
                &mut out,
                false,
                Matrix::row_major(x, d.rows, d.inner),
                weights,
            );
            out
        })
        .collect();
    let mut y = vec![0.0; d.rows * d.cols];
    for (b, out) in bands.iter().enumerate() {
        let width = out.len() / d.rows.max(1);
        for (row, values) in out.chunks_exact(width.max(1)).enumerate() {
            y[row * d.cols + b * band..][..width].copy_from_slice(values);
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values::{close, product, values};

    /// `(rows, inner, cols)`: one row and a few, columns off the band alignment and fewer
    /// than a band, an inner size of one.
    const SHAPES: &[(usize, usize, usize)] = &[
        (1, 3136, 512),
        (1, 100, 37),
        (3, 70, 250),
        (1, 1, 5),
        (2, 9, 1),
    ];

    #[test]
    fn forward_matches_the_definition() {
        for &(rows, inner, cols) in SHAPES {
            let d = Dims { rows, inner, cols };
            let (x, w) = (values(rows * inner, 1), values(inner * cols, 2));
            let expected = product(&x, &w, [rows, inner, cols]);
            close(&forward(&x, &w, d), &expected, &format!("{d:?}"));
        }
    }

    #[test]
    fn splits_only_few_rows_of_enough_work() {
        let big = Dims {
            rows: 1,
            inner: 3136,
            cols: 512,
        };
        assert_eq!(applies(big), rayon::current_num_threads() > 1);
        assert!(!applies(Dims { rows: 128, ..big }));
        assert!(!applies(Dims { inner: 16, ..big }));
    }
}
