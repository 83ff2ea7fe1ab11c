//! sepnet's own GPU kernels, written in CubeCL and plugged into burn's wgpu backend the way
//! the CPU kernels are plugged into flex: [`GpuKernels`] is a backend extension implemented
//! on burn's CubeCL backend (the kernels), on its fusion wrapper (generated: the kernel runs as
//! one opaque operation in a fused stream) and under autodiff (`autodiff.rs`: the backward
//! convolution gradients are burn's own, which measured faster than its forward on an H200).
//!
//! Each kernel is tested against flex on awkward shapes, on a real Vulkan device (Mesa's
//! lavapipe in CI): sepnet-model's `tests/it/gpu.rs`. `SEPNET_KERNELS=burn` turns the routing
//! off, as on the CPU.

mod autodiff;
pub mod cache;
mod conv;
mod depthwise;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension};
use burn::tensor::{DType, Shape, Tensor};

use crate::{Fused, Geometry};

/// The operations sepnet runs on the GPU itself. Shapes are NCHW; weights are burn's
/// `[out_channels, in_channels / groups, k_h, k_w]`.
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait GpuKernels: Backend {
    /// Full convolution (one group) without bias, as a tiled implicit matrix product.
    #[fusion(dtype = x, shape = output_shape(geometry, weight))]
    fn conv2d_tiled(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;

    /// Depthwise convolution (`weight [c·m, 1, k_h, k_w]`) with its bias `[c·m]` and a fused
    /// activation, in one pass.
    #[fusion(dtype = x, shape = Shape::new(geometry.output()))]
    fn depthwise_bias_act(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: Geometry,
        activation: Fused,
    ) -> FloatTensor<Self>;

    /// `output_grad · act'(output)` for an activation's `output`.
    #[fusion(dtype = output_grad, shape = output_grad)]
    fn activation_grad(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        activation: Fused,
    ) -> FloatTensor<Self>;
}

impl GpuKernels for burn_cubecl::CubeBackend {
    fn conv2d_tiled(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self> {
        conv::conv2d_tiled(x, weight, geometry)
    }

    fn depthwise_bias_act(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: Geometry,
        activation: Fused,
    ) -> FloatTensor<Self> {
        depthwise::depthwise_bias_act(x, weight, bias, geometry, activation)
    }

    fn activation_grad(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        activation: Fused,
    ) -> FloatTensor<Self> {
        depthwise::activation_grad(output, output_grad, activation)
    }
}

/// A convolution's output shape, for the fusion stream to allocate before the kernel runs.
fn output_shape(geometry: &Geometry, weight: &Shape) -> Shape {
    let [batch, _, _, _] = geometry.input;
    let [out_h, out_w] = geometry.output_hw();
    Shape::new([batch, weight[0], out_h, out_w])
}

/// Whether `x` lives where sepnet's GPU kernels apply: f32 on a CubeCL device (wgpu), with or
/// without autodiff.
pub fn applies_to<const D: usize>(x: &Tensor<D>) -> bool {
    crate::enabled()
        && x.dtype() == DType::F32
        && matches!(x.device().inner().as_dispatch(), DispatchDevice::Cube(_))
}

/// Whether one launch of [`dense_conv2d`] covers a convolution of `geometry`.
pub fn fits(geometry: &Geometry) -> bool {
    conv::fits(geometry)
}

/// A bias-free full convolution through [`GpuKernels`], for a `geometry` that [`fits`].
pub fn dense_conv2d(x: Tensor<4>, weight: Tensor<4>, geometry: Geometry) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as GpuKernels>::conv2d_tiled(
        x.into_dispatch(),
        weight.into_dispatch(),
        geometry,
    ))
}

/// `act(depthwise(x, weight) + bias)` through [`GpuKernels`], in one pass.
pub fn depthwise_bias_act(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    geometry: Geometry,
    activation: Fused,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as GpuKernels>::depthwise_bias_act(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        geometry,
        activation,
    ))
}
