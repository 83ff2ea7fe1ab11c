//! The `sepnet` binary end to end, one test binary: every command, clear errors for bad
//! input, and faults (a second writer, a full disk, kills at random moments, NaN flags).

mod classes;
mod commands;
mod common;
mod distill;
mod export;
mod faults;
mod flags;
#[cfg(feature = "wgpu")]
mod gpu;
mod hostile;
mod mpi;
mod quantize;
mod sweep;
mod workflow;
