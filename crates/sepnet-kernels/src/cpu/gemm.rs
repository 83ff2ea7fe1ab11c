//! A bounds-checked `f32` matrix product on top of the `gemm` crate (the one burn-flex uses),
//! on strided views, single-threaded unless asked (callers mostly parallelise over images).

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A strided, read-only matrix view: element `(i, j)` is `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Matrix {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, as a view of the same data.
    pub fn t(self) -> Self {
        Matrix {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// `out = a · b` (or `out += a · b` with `accumulate`), `out` row-major `a.rows × b.cols`.
///
/// # Panics
/// When the shapes disagree or a view reaches outside its slice.
pub fn matmul(out: &mut [f32], accumulate: bool, a: Matrix, b: Matrix) {
    let strides = [b.cols, 1];
    assert_eq!(out.len(), a.rows * b.cols, "output has the wrong size");
    matmul_strided(out, strides, accumulate, a, b, false);
}

/// `out = a · b` (or `+=`) into a strided output: element `(i, j)` of the product goes to
/// `out[i·out_strides[0] + j·out_strides[1]]`; `parallel` lets gemm use rayon.
///
/// # Panics
/// When the shapes disagree or a view reaches outside its slice.
pub fn matmul_strided(
    out: &mut [f32],
    out_strides: [usize; 2],
    accumulate: bool,
    a: Matrix,
    b: Matrix,
    parallel: bool,
) {
    // SAFETY: `out` is a unique borrow of initialised floats, `out.len()` long.
    unsafe {
        product(
            out.as_mut_ptr(),
            out.len(),
            out_strides,
            accumulate,
            a,
            b,
            parallel,
        )
    }
}

/// How a product uses the threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// One: the caller parallelises, over images.
    One,
    /// gemm's own split: one large product, such as a whole batch's channel-major matrix.
    Gemm,
    /// A band of the output's rows per thread, each a product on one thread: one image's
    /// product when images are fewer than threads. At batch 1 vgg-full's 3×3 products ran
    /// 15–25% faster so than with gemm's own split (e.g. 256 → 256 at 8×8: 602 → 446 µs).
    RowBands,
}

impl Threads {
    /// [`Threads::RowBands`] for a batch of fewer images than threads, else [`Threads::One`].
    pub fn for_batch(batch: usize) -> Threads {
        if super::parallel::few_images(batch) {
            Threads::RowBands
        } else {
            Threads::One
        }
    }
}

/// `out = a · b` into row-major uninitialised memory, which it writes in full, on the
/// `threads` asked for (products under [`PARALLEL_MIN_MACS`] run on one).
///
/// # Panics
/// When the shapes disagree or a view reaches outside its slice.
pub fn matmul_uninit(out: &mut [MaybeUninit<f32>], a: Matrix, b: Matrix, threads: Threads) {
    assert_eq!(out.len(), a.rows * b.cols, "output has the wrong size");
    if a.cols == 0 {
        out.fill(MaybeUninit::new(0.0));
        return;
    }
    let large = a.rows * a.cols * b.cols >= PARALLEL_MIN_MACS;
    let bands = rayon::current_num_threads();
    if threads == Threads::RowBands && large && a.rows >= 2 * bands {
        let band = a.rows.div_ceil(bands);
        out.par_chunks_mut(band * b.cols)
            .enumerate()
            .for_each(|(i, out)| {
                let rows = out.len() / b.cols;
                let a = Matrix {
                    data: &a.data[i * band * a.row_stride..],
                    rows,
                    ..a
                };
                matmul_uninit(out, a, b, Threads::One);
            });
        return;
    }
    let gemm_split = threads == Threads::Gemm;
    // SAFETY: `out` is a unique borrow `out.len()` long; with `accumulate` false gemm only
    // writes it (`dst = a·b`, never reading the old values).
    unsafe {
        product(
            out.as_mut_ptr().cast(),
            out.len(),
            [b.cols, 1],
            false,
            a,
            b,
            gemm_split,
        )
    }
}

/// Multiply-adds from which a product asked to run in parallel does.
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// # Safety
/// `out` must be valid for writes of `out_len` floats (and for reads when `accumulate`),
/// and must not overlap `a` or `b`.
unsafe fn product(
    out: *mut f32,
    out_len: usize,
    out_strides: [usize; 2],
    accumulate: bool,
    a: Matrix,
    b: Matrix,
    parallel: bool,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    let out_fits =
        m == 0 || n == 0 || (m - 1) * out_strides[0] + (n - 1) * out_strides[1] < out_len;
    assert!(
        out_fits && a.fits() && b.fits(),
        "a matrix view reaches outside its data"
    );
    if m == 0 || n == 0 {
        return;
    }
    // Splitting a product across threads costs more than it saves below a few million
    // multiply-adds (MNIST's layers at batch 1 got slower with it).
    let parallelism = if parallel && m * n * k >= PARALLEL_MIN_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index gemm touches is inside the slices (checked above); the caller
    // guarantees `out` is writable and does not overlap the shared inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
            out_strides[1] as isize,
            out_strides[0] as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::test_values::{close, product, values};

    /// `(rows, inner, cols)`: above [`PARALLEL_MIN_MACS`] with rows that do not split evenly,
    /// and below it.
    const SHAPES: &[(usize, usize, usize)] = &[(71, 150, 113), (5, 8, 3)];

    #[test]
    fn every_way_of_using_the_threads_gives_the_product() {
        for &(rows, inner, cols) in SHAPES {
            let (a, b) = (values(rows * inner, 1), values(inner * cols, 2));
            let expected = product(&a, &b, [rows, inner, cols]);
            for threads in [Threads::One, Threads::Gemm, Threads::RowBands] {
                let mut out = vec![MaybeUninit::new(f32::NAN); rows * cols];
                let (a, b) = (
                    Matrix::row_major(&a, rows, inner),
                    Matrix::row_major(&b, inner, cols),
                );
                matmul_uninit(&mut out, a, b, threads);
                // SAFETY: `matmul_uninit` wrote every value.
                let out: Vec<f32> = out.iter().map(|v| unsafe { v.assume_init() }).collect();
                close(
                    &out,
                    &expected,
                    &format!("{threads:?} {rows}×{inner}×{cols}"),
                );
            }
        }
    }
}
