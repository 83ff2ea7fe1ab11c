//! Run-time choice of vector instructions for the kernels' own loops.
//!
//! A Rust binary built for plain `x86_64` vectorises loops with 4-lane SSE2, whatever CPU it
//! later runs on. `multiversion!` compiles a kernel's loop three times — for AVX-512 (16
//! lanes), for AVX2 (8 lanes) and for the build's baseline — and each call runs the widest
//! one the CPU has. The arithmetic is the same in every version: no multiply-add is fused
//! (Rust never contracts `a * b + c`) and no sum is reordered, so every version gives
//! bit-identical results and a run resumes bit-exactly on any of them.
//!
//! `SEPNET_SIMD=portable|avx2|avx512` caps the choice (for A/B timing); it never selects
//! instructions the CPU lacks.

use std::sync::atomic::{AtomicU8, Ordering};

/// Instruction-set levels, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// The build target's own instructions (SSE2 on plain `x86_64`).
    Portable = 1,
    /// AVX2 with FMA available (x86-64-v3).
    Avx2 = 2,
    /// AVX-512 F/BW/DQ/VL (x86-64-v4).
    Avx512 = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The level the kernels run at: the best the CPU has, capped by `SEPNET_SIMD` or
/// [`set_level`].
pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        1 => Level::Portable,
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => {
            let cap = match std::env::var("SEPNET_SIMD").as_deref() {
                Ok("portable") => Level::Portable,
                Ok("avx2") => Level::Avx2,
                _ => Level::Avx512,
            };
            set_level(cap)
        }
    }
}

/// Caps the level (at most what the CPU has) and returns the level now in force. Every
/// level computes the same bits; this exists to compare their speed and to test that.
pub fn set_level(cap: Level) -> Level {
    let chosen = cap.min(detected());
    LEVEL.store(chosen as u8, Ordering::Relaxed);
    chosen
}

/// The widest level this CPU has.
pub(crate) fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
            return Level::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return Level::Avx2;
        }
    }
    Level::Portable
}

/// Defines `fn name(args) -> ret { body }` compiled once per [`Level`], dispatching on
/// [`level()`] at each call. Put it around the loop that runs per plane or per channel (not
/// around a rayon call: closures handed to rayon are compiled on their own, without the
/// caller's instruction set). Other crates call it as `sepnet_kernels::multiversion!` (or
/// `sepnet_model::multiversion!`, the same macro).
///
/// ```
/// sepnet_kernels::multiversion! {
///     /// `Σ x`, vectorised as widely as the CPU allows.
///     fn total(x: &[i32]) -> i32 { x.iter().sum() }
/// }
/// assert_eq!(total(&[1, 2, 3]), 6);
/// ```
#[macro_export]
macro_rules! multiversion {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
                fn avx512($($arg: $ty),*) $(-> $ret)? { portable($($arg),*) }
                #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
                fn avx2($($arg: $ty),*) $(-> $ret)? { portable($($arg),*) }
                match $crate::cpu::simd::level() {
                    // SAFETY: `level()` never exceeds what the CPU reports.
                    $crate::cpu::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::cpu::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::cpu::simd::Level::Portable => {}
                }
            }
            portable($($arg),*)
        }
    };
}

pub(crate) use multiversion;
