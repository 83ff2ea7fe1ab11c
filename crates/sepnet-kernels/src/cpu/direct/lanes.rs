//! One vector of `f32` lanes at each instruction-set level, for the direct kernels: AVX-512
//! (16 lanes), AVX2 + FMA (8) and plain Rust (8, fused with `f32::mul_add`), with the same
//! rounding at every level, so every level computes the same bits.

/// One vector of `f32` lanes.
pub(super) trait Lanes: Copy {
    /// Lanes per vector.
    const N: usize;
    /// All zeros.
    fn zero() -> Self;
    /// Loads `N` values.
    ///
    /// # Safety
    /// `p` must be valid for reading `N` floats.
    unsafe fn load(p: *const f32) -> Self;
    /// `self + x·w` in every lane, rounded once.
    fn mul_add(self, x: f32, w: Self) -> Self;
    /// Stores `N` values.
    ///
    /// # Safety
    /// `p` must be valid for writing `N` floats.
    unsafe fn store(self, p: *mut f32);
    /// `self + o` in every lane.
    fn add(self, o: Self) -> Self;
    /// `min(max(self, lo), hi)` in every lane.
    fn clamp(self, lo: f32, hi: f32) -> Self;
}

/// Eight lanes in plain Rust: the path for CPUs without AVX2 (and a reference for the others).
#[derive(Clone, Copy)]
pub(super) struct Portable([f32; 8]);

impl Lanes for Portable {
    const N: usize = 8;
    #[inline(always)]
    fn zero() -> Self {
        Portable([0.0; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable floats.
        Portable(unsafe { p.cast::<[f32; 8]>().read_unaligned() })
    }
    #[inline(always)]
    fn mul_add(self, x: f32, w: Self) -> Self {
        Portable(std::array::from_fn(|i| x.mul_add(w.0[i], self.0[i])))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 8 writable floats.
        unsafe { p.cast::<[f32; 8]>().write_unaligned(self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i] + o.0[i]))
    }
    #[inline(always)]
    fn clamp(self, lo: f32, hi: f32) -> Self {
        Portable(self.0.map(|v| v.max(lo).min(hi)))
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    use super::Lanes;

    /// AVX2 + FMA: eight lanes.
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx2(__m256);

    impl Lanes for Avx2 {
        const N: usize = 8;
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY (this and the intrinsics below): only inlined into functions compiled
            // with AVX2 and FMA, which run only on CPUs that have them.
            Avx2(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Avx2(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        fn mul_add(self, x: f32, w: Self) -> Self {
            Avx2(unsafe { _mm256_fmadd_ps(_mm256_set1_ps(x), w.0, self.0) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Avx2(unsafe { _mm256_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn clamp(self, lo: f32, hi: f32) -> Self {
            // vmaxps returns its second operand when one is NaN: a NaN sum becomes `lo`,
            // as `f32::max` (the portable path, the NCHW kernels) makes it.
            let v = unsafe { _mm256_max_ps(self.0, _mm256_set1_ps(lo)) };
            Avx2(unsafe { _mm256_min_ps(v, _mm256_set1_ps(hi)) })
        }
    }

    /// AVX-512F: sixteen lanes.
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx512(__m512);

    impl Lanes for Avx512 {
        const N: usize = 16;
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY (this and the intrinsics below): only inlined into functions compiled
            // with AVX-512F, which run only on CPUs that have it.
            Avx512(unsafe { _mm512_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Avx512(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        fn mul_add(self, x: f32, w: Self) -> Self {
            Avx512(unsafe { _mm512_fmadd_ps(_mm512_set1_ps(x), w.0, self.0) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Avx512(unsafe { _mm512_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn clamp(self, lo: f32, hi: f32) -> Self {
            // Operand order as in `Avx2::clamp`.
            let v = unsafe { _mm512_max_ps(self.0, _mm512_set1_ps(lo)) };
            Avx512(unsafe { _mm512_min_ps(v, _mm512_set1_ps(hi)) })
        }
    }
}
