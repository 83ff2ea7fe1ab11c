//! # sepnet-quant
//!
//! Post-training int8 quantization: a trained network lowered to its inference ops
//! ([`Program`]: BatchNorm folded into the convolution before it, ReLU/ReLU6 fused), its
//! activation ranges observed on calibration images ([`calibrate`]), its weights and
//! activations quantized ([`Quantized`]) and evaluated in integer arithmetic
//! ([`Quantized::forward`]), and written as an ONNX QDQ model ([`qdq::onnx`]) that ONNX
//! Runtime runs with its int8 kernels.
//!
//! ```
//! use burn::tensor::Device;
//! use sepnet_quant::{Granularity, Program, Quantized, RangeMethod, Scheme, calibrate};
//! use sepnet_model::{Network, export, spec::NetworkSpec};
//!
//! let spec = NetworkSpec::parse("conv:4:3,bn,relu,pool,flatten,dense:3", [8, 8, 1]).unwrap();
//! let network = Network::new(&spec, &Device::flex()).unwrap();
//! let program = Program::lower(&export::graph(&spec, &network).unwrap(), [1, 8, 8]).unwrap();
//! let images: Vec<f32> = (0..2 * 64).map(|i| (i % 7) as f32 / 7.0).collect();
//! let ranges = calibrate(&program, &images, 2, RangeMethod::MinMax).unwrap();
//! let scheme = Scheme { granularity: Granularity::PerChannel, reduce_range: false };
//! let int8 = Quantized::new(program, &ranges, scheme).unwrap();
//! assert_eq!(int8.forward(&images, 2).len(), 2 * 3);
//! ```

#![warn(missing_docs)]

mod calibrate;
mod float;
mod int8;
mod loops;
mod program;
pub mod qdq;
mod shifted;

pub use calibrate::{Range, RangeMethod, TAIL, calibrate};
pub use float::forward;
pub use int8::{Granularity, QParams, QWeights, Quantized, Scheme};
pub use program::{Act, Conv, Dense, Op, OpKind, Program, Window};

#[cfg(test)]
mod tests;
