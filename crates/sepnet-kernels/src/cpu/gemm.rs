//! A bounds-checked `f32` matrix product on top of the `gemm` crate (the one burn-flex uses),
//! on strided views, single-threaded unless asked (callers mostly parallelise over images).

use std::mem::MaybeUninit;

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

/// `out = a · b` into row-major uninitialised memory, which it writes in full; `parallel`
/// lets gemm use rayon.
///
/// # Panics
/// When the shapes disagree or a view reaches outside its slice.
pub fn matmul_uninit(out: &mut [MaybeUninit<f32>], a: Matrix, b: Matrix, parallel: bool) {
    assert_eq!(out.len(), a.rows * b.cols, "output has the wrong size");
    if a.cols == 0 {
        out.fill(MaybeUninit::new(0.0));
        return;
    }
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
            parallel,
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
