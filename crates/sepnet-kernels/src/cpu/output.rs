//! Kernel outputs allocated without zeroing them first.
//!
//! `vec![0.0; n]` writes every byte before a kernel overwrites it; for a 32 MiB activation
//! that extra pass cost as much as the 1×1 convolution producing it (glibc `memset` was 13% of
//! a VGG-separable training step). [`filled`] hands out the uninitialised chunks, and a chunk
//! only turns into a [`Written`] proof through a method that writes all of it, so the vector
//! it returns holds no uninitialised value.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gemm::{Matrix, Threads, matmul_uninit};

/// One chunk of an output being built by [`filled`].
pub struct Chunk<'a>(&'a mut [MaybeUninit<f32>]);

/// Proof that the [`Chunk`] of lifetime `'a` was written in full (invariant in `'a`, so a
/// proof for one chunk cannot stand in for another's).
pub struct Written<'a>(PhantomData<fn(&'a ()) -> &'a ()>);

impl<'a> Chunk<'a> {
    /// Writes `a · b` (row-major, `a.rows × b.cols` = the chunk's length) on `threads`.
    pub fn product(self, a: Matrix, b: Matrix, threads: Threads) -> Written<'a> {
        matmul_uninit(self.0, a, b, threads);
        Written(PhantomData)
    }

    /// Writes `a · b` like [`Chunk::product`], then lets `epilogue` rewrite the finished
    /// values in place while they are still in cache.
    pub fn product_then(
        self,
        a: Matrix,
        b: Matrix,
        threads: Threads,
        epilogue: impl FnOnce(&mut [f32]),
    ) -> Written<'a> {
        matmul_uninit(self.0, a, b, threads);
        // SAFETY: `matmul_uninit` wrote every element, so the chunk holds valid `f32`s (and
        // `MaybeUninit<f32>` has `f32`'s layout).
        let values = unsafe { &mut *(self.0 as *mut [MaybeUninit<f32>] as *mut [f32]) };
        epilogue(values);
        Written(PhantomData)
    }

    /// Copies `rows` rows of `width` values from `src`, whose rows start `pitch` apart; the
    /// chunk must be exactly `rows × width` long.
    ///
    /// # Panics
    /// When the sizes disagree.
    pub fn rows_from(self, src: &[f32], pitch: usize, width: usize) -> Written<'a> {
        assert!(
            width > 0 && self.0.len().is_multiple_of(width),
            "chunk is not whole rows"
        );
        for (i, row) in self.0.chunks_exact_mut(width).enumerate() {
            row.write_copy_of_slice(&src[i * pitch..][..width]);
        }
        Written(PhantomData)
    }
}

impl<'a> Chunk<'a> {
    /// Copies planes of `rows × width` values from `src`, whose planes start `pitches[0]`
    /// apart and whose rows start `pitches[1]` apart within a plane; the chunk must be whole
    /// planes.
    ///
    /// # Panics
    /// When the sizes disagree.
    pub fn planes_from(self, src: &[f32], pitches: [usize; 2], shape: [usize; 2]) -> Written<'a> {
        let [rows, width] = shape;
        let plane = rows * width;
        assert!(
            plane > 0 && self.0.len().is_multiple_of(plane),
            "chunk is not whole planes"
        );
        for (p, out) in self.0.chunks_exact_mut(plane).enumerate() {
            for (r, row) in out.chunks_exact_mut(width).enumerate() {
                row.write_copy_of_slice(&src[p * pitches[0] + r * pitches[1]..][..width]);
            }
        }
        Written(PhantomData)
    }

    /// Lets `write` fill the chunk (an element-wise kernel taking its output as
    /// `&mut [MaybeUninit<f32>]`).
    ///
    /// # Safety
    /// `write` must initialise every element of the slice it receives.
    pub unsafe fn write_all(self, write: impl FnOnce(&mut [MaybeUninit<f32>])) -> Written<'a> {
        write(self.0);
        Written(PhantomData)
    }
}

/// A `len`-long vector built in parallel from consecutive `chunk`-long pieces: `fill(scratch,
/// index, piece)` must write its piece (it returns the proof that it did); `scratch` is made
/// by `init` once per rayon task, as in `for_each_init`.
///
/// # Panics
/// When `chunk` is 0 or does not divide `len`.
pub fn filled<S, I, F>(len: usize, chunk: usize, init: I, fill: F) -> Vec<f32>
where
    I: Fn() -> S + Sync + Send,
    F: for<'a> Fn(&mut S, usize, Chunk<'a>) -> Written<'a> + Sync + Send,
{
    assert!(
        chunk > 0 && len.is_multiple_of(chunk),
        "chunks must tile the output"
    );
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each_init(init, |scratch, (i, piece)| {
            let _written = fill(scratch, i, Chunk(piece));
        });
    // SAFETY: the chunks tile `0..len` and each was written in full: a `Written` exists only
    // once a `Chunk` method wrote every element of its chunk.
    unsafe { out.set_len(len) };
    out
}
