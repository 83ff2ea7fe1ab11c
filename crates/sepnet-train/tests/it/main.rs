//! sepnet-train's integration tests, one binary: real training on Fashion-MNIST (Debian's
//! dataset-fashion-mnist, which CI installs), resume, and faults of the run directory.
//! Tests that need the dataset are ignored, with the reason, when it is absent.

mod common;
mod distill;
mod export;
mod faults;
mod learning;
mod own_module;
mod qat;
mod resume;
mod robustness;
