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
