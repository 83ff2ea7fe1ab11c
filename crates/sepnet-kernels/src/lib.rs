//! sepnet's own kernels, apart from the framework: the CPU kernels for burn's flex backend
//! ([`cpu`], re-exported at the root) and the GPU kernels for its wgpu backend (`gpu`, with
//! the `wgpu` feature), each plugged into burn as a backend extension, each tested against a
//! reference (naive loops on the CPU, flex on the GPU). sepnet-model's layers call them; its
//! `kernels` module is this crate.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use sepnet_kernels::{Geometry, applies_to, depthwise_conv2d};
//!
//! let device = Device::flex();
//! let x = Tensor::<4>::ones([1, 2, 5, 5], &device);
//! let weight = Tensor::<4>::ones([2, 1, 3, 3], &device);
//! assert!(applies_to(&x));
//! let geometry = Geometry::new([1, 2, 5, 5], [3, 3], [1, 1], [1, 1], [(1, 1), (1, 1)]);
//! let y = depthwise_conv2d(x, weight, geometry);
//! assert_eq!(y.dims(), [1, 2, 5, 5]);
//! ```

pub mod cpu;
mod fused;
mod geometry;
#[cfg(feature = "wgpu")]
pub mod gpu;

pub use cpu::*;
pub use fused::Fused;
pub use geometry::Geometry;
