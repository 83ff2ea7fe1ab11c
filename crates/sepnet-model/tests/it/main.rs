//! sepnet-model's integration tests, one binary: parameter and MAC counts against published
//! figures, specs that print and parse back, and every kernel and layer against its naive
//! reference.

mod activations;
mod batch_norm;
mod blocked;
mod blocks;
mod counts;
#[cfg(feature = "wgpu")]
mod gpu;
mod reference_conv;
mod se;
mod specs;

/// The flex device's random numbers come from one generator per process, and the tests of this
/// binary run on parallel threads: a test that seeds it, or draws from it (building a
/// network draws its weights), holds this lock, so no other test's draw falls between a seed
/// and the draws it fixes.
fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
