//! sepnet's own CPU kernels, plugged into burn through its backend-extension mechanism.
//!
//! burn-flex has no backward kernels of its own for convolutions: autodiff falls back to
//! burn's generic formulation (a transposed convolution for the input gradient, a
//! convolution over swapped axes or per group for the weight gradient), which made a
//! depthwise layer's backward 4–12× its forward and a pointwise one's up to 35×; its max
//! pooling under autodiff cost as much as the convolution before it. [`SepnetKernels`] is an
//! extension trait with the operations sepnet runs itself — depthwise, pointwise (1×1) and
//! full convolution without bias, a convolution's bias and activation in one pass, max
//! pooling, training-mode BatchNorm with the activation after it, a separable
//! convolution's inference in one pass, and full convolutions and max pools in a blocked
//! channel layout kept between layers ([`BlockedTensor`]) — each implemented three ways:
//! - on [`Flex`](burn::backend::Flex) by plain loops, matrix products and direct
//!   microkernels ([`depthwise`], [`pointwise`], [`dense`], [`few_rows`], [`bias_act`], [`pool`],
//!   [`batch_norm`], [`separable`], [`direct`]), forward and backward, the loops compiled per
//!   instruction set ([`simd`]);
//! - on `Autodiff<B>` by recording the operation with its own backward pass, which calls the
//!   inner backend's gradient kernels (`autodiff.rs`);
//! - everywhere else not at all: the functions below are only called for tensors
//!   [`applies_to`] accepts. On the GPU (wgpu) sepnet's CubeCL kernels, a trait of their
//!   own, take the full convolutions and the depthwise ones with a bias (`gpu`, with the
//!   `wgpu` feature); the rest is burn's.
//!
//! Each kernel is tested against its definition written as naive loops (forward and both
//! gradients), and the layers are tested end to end in `tests/reference_conv.rs`.
//! `SEPNET_KERNELS=burn` turns the routing off (burn's kernels everywhere), for A/B timing.
//! Where each kernel's design choices come from (measurements): `docs/performance.md`.

pub mod adam;
mod autodiff;
mod autodiff_blocked;
pub mod batch_norm;
pub mod bias_act;
pub mod dense;
mod dense_wide;
pub mod depthwise;
pub mod direct;
pub mod few_rows;
mod flex;
mod gemm;
mod layout;
mod output;
mod parallel;
pub mod pointwise;
pub mod pool;
pub mod separable;
pub mod simd;
#[cfg(test)]
mod test_values;
mod wide;

use std::sync::OnceLock;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, ExtensionType, backend_extension};
use burn::tensor::{DType, Device, Tensor};

pub use crate::Geometry;

use crate::Fused;

/// A training-mode BatchNorm's output and the batch statistics it used.
#[derive(ExtensionType)]
pub struct NormTrain<B: Backend> {
    /// The normalised, scaled and shifted input.
    pub output: FloatTensor<B>,
    /// Per-channel batch mean `[c]`.
    pub mean: FloatTensor<B>,
    /// Per-channel biased batch variance `[c]`.
    pub variance: FloatTensor<B>,
}

/// Gradients of a training-mode BatchNorm.
#[derive(ExtensionType)]
pub struct NormGrads<B: Backend> {
    /// For the input.
    pub x: FloatTensor<B>,
    /// For the scale γ.
    pub gamma: FloatTensor<B>,
    /// For the shift β.
    pub beta: FloatTensor<B>,
}

/// A parameter and its Adam moments after one update.
#[derive(ExtensionType)]
pub struct AdamUpdate<B: Backend> {
    /// The updated parameter.
    pub param: FloatTensor<B>,
    /// The first moment `m`.
    pub moment_1: FloatTensor<B>,
    /// The second moment `v`.
    pub moment_2: FloatTensor<B>,
}

/// Gradients of a bias-and-activation pass.
#[derive(ExtensionType)]
pub struct BiasGrads<B: Backend> {
    /// For the pre-activation input.
    pub x: FloatTensor<B>,
    /// For the bias.
    pub bias: FloatTensor<B>,
}

/// Gradients of a blocked convolution with its bias and activation.
#[derive(ExtensionType)]
pub struct BlockedConvGrads<B: Backend> {
    /// For the blocked input.
    pub x: FloatTensor<B>,
    /// For the weight `[f, c, k_h, k_w]`.
    pub weight: FloatTensor<B>,
    /// For the bias `[f]`.
    pub bias: FloatTensor<B>,
}

/// Gradients of a blocked depthwise convolution.
#[derive(ExtensionType)]
pub struct BlockedDepthwiseGrads<B: Backend> {
    /// For the blocked input.
    pub x: FloatTensor<B>,
    /// For the weight `[c, 1, k_h, k_w]`.
    pub weight: FloatTensor<B>,
}

/// The operations sepnet implements itself. Shapes are NCHW; weights are burn's
/// `[out_channels, in_channels / groups, k_h, k_w]`.
#[backend_extension(Flex, Autodiff)]
pub trait SepnetKernels: Backend {
    /// Depthwise convolution without bias: `weight [c·m, 1, k_h, k_w]`.
    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;
    /// Input gradient of [`depthwise_conv2d`](SepnetKernels::depthwise_conv2d).
    fn depthwise_conv2d_input_grad(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;
    /// Weight gradient of [`depthwise_conv2d`](SepnetKernels::depthwise_conv2d).
    fn depthwise_conv2d_weight_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;

    /// 1×1 convolution, stride 1, no padding or bias: `weight [f, c, 1, 1]`.
    fn pointwise_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Input gradient of [`pointwise_conv2d`](SepnetKernels::pointwise_conv2d).
    fn pointwise_conv2d_input_grad(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// Weight gradient of [`pointwise_conv2d`](SepnetKernels::pointwise_conv2d).
    fn pointwise_conv2d_weight_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `x [rows, inner] · w [inner, cols]` for a few rows ([`few_rows::applies`]): the
    /// weights' columns split across threads. Differentiable under autodiff (burn's product).
    fn few_rows_matmul(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Full convolution (one group) without bias: `weight [f, c, k_h, k_w]`.
    fn dense_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;
    /// Input gradient of [`dense_conv2d`](SepnetKernels::dense_conv2d).
    fn dense_conv2d_input_grad(
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;
    /// Weight gradient of [`dense_conv2d`](SepnetKernels::dense_conv2d).
    fn dense_conv2d_weight_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;

    /// Max pooling; padding is skipped, never selected.
    fn max_pool(x: FloatTensor<Self>, geometry: Geometry) -> FloatTensor<Self>;
    /// Input gradient of [`max_pool`](SepnetKernels::max_pool).
    fn max_pool_input_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;

    /// `act(x + bias)` with `bias [c]` broadcast over `x [n, c, h, w]`: a convolution's
    /// epilogue in one pass.
    fn bias_activation(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Fused,
    ) -> FloatTensor<Self>;
    /// Gradients of [`bias_activation`](SepnetKernels::bias_activation) from its output.
    fn bias_activation_grads(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        activation: Fused,
    ) -> BiasGrads<Self>;

    /// A separable convolution's inference in one pass per image: depthwise (`geometry`,
    /// no bias), bias `[c·m]` and activation, pointwise `[f, c·m, 1, 1]`, bias `[f]` and
    /// activation. Where the fused kernel does not apply (strides other than 1, autodiff),
    /// the operations run one after the other.
    fn separable_inference(
        x: FloatTensor<Self>,
        dw_weight: FloatTensor<Self>,
        dw_bias: FloatTensor<Self>,
        pw_weight: FloatTensor<Self>,
        pw_bias: FloatTensor<Self>,
        geometry: Geometry,
        activations: [Fused; 2],
    ) -> FloatTensor<Self>;

    /// BatchNorm over the channels of `x [n, c, h, w]` with the batch's own statistics, and
    /// the activation that follows it.
    fn fused_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        activation: Fused,
    ) -> NormTrain<Self>;
    /// One Adam update of a parameter of any shape from its gradient and moments, in one pass
    /// ([`adam::update`]); rewrites the tensors in place when nothing else holds them.
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        coefficients: adam::Coefficients,
    ) -> AdamUpdate<Self>;

    /// NCHW `x` into the blocked layout ([`direct::blocked`]) with `lanes` channels per
    /// block, as a tensor `[n, c / lanes, h·w, lanes]`.
    fn to_blocked(x: FloatTensor<Self>, lanes: usize) -> FloatTensor<Self>;
    /// `act(x + bias)` for NCHW `x`, into the blocked layout: a convolution's epilogue
    /// fused with the conversion that starts a blocked run, so only the blocked copy is kept
    /// for the backward pass.
    fn to_blocked_bias_act(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Fused,
        lanes: usize,
    ) -> FloatTensor<Self>;
    /// Gradients of [`to_blocked_bias_act`](SepnetKernels::to_blocked_bias_act) from its
    /// blocked output and output gradient: the NCHW input's (of `dims`) and the bias's.
    fn to_blocked_bias_act_grads(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        dims: [usize; 4],
        activation: Fused,
    ) -> BiasGrads<Self>;
    /// A blocked tensor back to NCHW `dims`.
    fn from_blocked(x: FloatTensor<Self>, dims: [usize; 4]) -> FloatTensor<Self>;
    /// `act(conv(x, weight) + bias)` in the blocked layout ([`direct::forward`]): `geometry`
    /// is the NCHW one, stride 1 ([`direct::applies`]).
    fn blocked_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: Geometry,
        activation: Fused,
    ) -> FloatTensor<Self>;
    /// Gradients of [`blocked_conv2d`](SepnetKernels::blocked_conv2d) from its input,
    /// weight, output and output gradient.
    fn blocked_conv2d_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        geometry: Geometry,
        activation: Fused,
    ) -> BlockedConvGrads<Self>;
    /// Bias-free depthwise convolution (multiplier 1) in the blocked layout
    /// ([`direct::depthwise`]): `geometry` is the NCHW one.
    fn blocked_depthwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self>;
    /// Gradients of [`blocked_depthwise`](SepnetKernels::blocked_depthwise) from its input,
    /// weight and output gradient.
    fn blocked_depthwise_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        geometry: Geometry,
    ) -> BlockedDepthwiseGrads<Self>;
    /// A 2×2, stride-2, unpadded max pool of a blocked tensor of NCHW `dims`.
    fn blocked_max_pool(x: FloatTensor<Self>, dims: [usize; 4]) -> FloatTensor<Self>;
    /// Input gradient of [`blocked_max_pool`](SepnetKernels::blocked_max_pool).
    fn blocked_max_pool_input_grad(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        dims: [usize; 4],
    ) -> FloatTensor<Self>;

    /// Gradients of [`fused_batch_norm`](SepnetKernels::fused_batch_norm).
    #[allow(clippy::too_many_arguments)] // the forward pass's inputs, statistics and settings
    fn fused_batch_norm_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        activation: Fused,
        output_grad: FloatTensor<Self>,
    ) -> NormGrads<Self>;
}

/// Whether sepnet's kernels run (`SEPNET_KERNELS=burn` switches them off).
pub fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("SEPNET_KERNELS").map_or(true, |v| v != "burn"))
}

/// Whether `x` lives where sepnet's kernels apply: f32 on the Flex CPU backend (with or
/// without autodiff).
pub fn applies_to<const D: usize>(x: &Tensor<D>) -> bool {
    enabled() && x.dtype() == DType::F32 && x.device().inner() == Device::flex()
}

/// One Adam update through [`SepnetKernels`], for tensors [`applies_to`] accepts: the
/// parameter and its moments `[m, v]` after the step.
pub fn adam_update<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: [Tensor<D>; 2],
    coefficients: adam::Coefficients,
) -> (Tensor<D>, [Tensor<D>; 2]) {
    let [moment_1, moment_2] = moments;
    let out = <Dispatch as SepnetKernels>::adam_update(
        param.into_dispatch(),
        grad.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        coefficients,
    );
    (
        Tensor::from_dispatch(out.param),
        [
            Tensor::from_dispatch(out.moment_1),
            Tensor::from_dispatch(out.moment_2),
        ],
    )
}

/// Bias-free depthwise convolution through [`SepnetKernels`].
pub fn depthwise_conv2d(x: Tensor<4>, weight: Tensor<4>, geometry: Geometry) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SepnetKernels>::depthwise_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        geometry,
    ))
}

/// 1×1 convolution through [`SepnetKernels`].
pub fn pointwise_conv2d(x: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SepnetKernels>::pointwise_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
    ))
}

/// `x · w` through [`SepnetKernels::few_rows_matmul`], for `x` [`applies_to`] accepts with a
/// shape [`few_rows::applies`] to.
pub fn few_rows_matmul(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SepnetKernels>::few_rows_matmul(
        x.into_dispatch(),
        w.into_dispatch(),
    ))
}

/// Bias-free full convolution through [`SepnetKernels`].
pub fn dense_conv2d(x: Tensor<4>, weight: Tensor<4>, geometry: Geometry) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SepnetKernels>::dense_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        geometry,
    ))
}

/// A convolution's bias and a fused activation through [`SepnetKernels`], in one pass.
pub fn bias_activation(x: Tensor<4>, bias: Tensor<1>, activation: Fused) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SepnetKernels>::bias_activation(
        x.into_dispatch(),
        bias.into_dispatch(),
        activation,
    ))
}

/// A separable convolution's inference through [`SepnetKernels`]; see
/// [`SepnetKernels::separable_inference`]. `weights`, `biases` and `activations` are the
/// depthwise half's, then the pointwise half's.
pub fn separable_inference(
    x: Tensor<4>,
    weights: [Tensor<4>; 2],
    biases: [Tensor<1>; 2],
    geometry: Geometry,
    activations: [Fused; 2],
) -> Tensor<4> {
    let [dw, pw] = weights;
    let [dw_bias, pw_bias] = biases;
    Tensor::from_dispatch(<Dispatch as SepnetKernels>::separable_inference(
        x.into_dispatch(),
        dw.into_dispatch(),
        dw_bias.into_dispatch(),
        pw.into_dispatch(),
        pw_bias.into_dispatch(),
        geometry,
        activations,
    ))
}

/// Training-mode BatchNorm and a fused activation through [`SepnetKernels`]:
/// `(output, batch mean, batch variance)`.
pub fn batch_norm_train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    activation: Fused,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let out = <Dispatch as SepnetKernels>::fused_batch_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        activation,
    );
    (
        Tensor::from_dispatch(out.output),
        Tensor::from_dispatch(out.mean),
        Tensor::from_dispatch(out.variance),
    )
}

/// Max pooling through [`SepnetKernels`].
pub fn max_pool2d(x: Tensor<4>, geometry: Geometry) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SepnetKernels>::max_pool(
        x.into_dispatch(),
        geometry,
    ))
}

/// An activation in the blocked layout ([`direct::blocked`]): the tensor
/// `[n, c / lanes, h·w, lanes]` and the NCHW dims it stands for.
#[derive(Clone, Debug)]
pub struct BlockedTensor {
    /// The blocked values.
    pub values: Tensor<4>,
    /// `[n, c, h, w]`.
    pub dims: [usize; 4],
}

impl BlockedTensor {
    /// NCHW `x` (on a device [`applies_to`] accepts) into the blocked layout, at the lanes of
    /// the kernels' level.
    pub fn from_nchw(x: Tensor<4>) -> BlockedTensor {
        let dims = x.dims();
        let values = <Dispatch as SepnetKernels>::to_blocked(x.into_dispatch(), direct::lanes());
        BlockedTensor {
            values: Tensor::from_dispatch(values),
            dims,
        }
    }

    /// `act(x + bias)` for NCHW `x`, into the blocked layout (a convolution's epilogue and
    /// the conversion in one pass).
    pub fn from_nchw_with(x: Tensor<4>, bias: Tensor<1>, activation: Fused) -> BlockedTensor {
        let dims = x.dims();
        let values = <Dispatch as SepnetKernels>::to_blocked_bias_act(
            x.into_dispatch(),
            bias.into_dispatch(),
            activation,
            direct::lanes(),
        );
        BlockedTensor {
            values: Tensor::from_dispatch(values),
            dims,
        }
    }

    /// Back to NCHW.
    pub fn into_nchw(self) -> Tensor<4> {
        let dims = self.dims;
        Tensor::from_dispatch(<Dispatch as SepnetKernels>::from_blocked(
            self.values.into_dispatch(),
            dims,
        ))
    }

    /// `act(conv(self, weight) + bias)`, stride 1 ([`direct::applies`]).
    pub fn conv2d(self, weight: Tensor<4>, bias: Tensor<1>, g: Geometry, act: Fused) -> Self {
        let [n, _, oh, ow] = g.output();
        let filters = bias.dims()[0];
        let values = <Dispatch as SepnetKernels>::blocked_conv2d(
            self.values.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
            g,
            act,
        );
        BlockedTensor {
            values: Tensor::from_dispatch(values),
            dims: [n, filters, oh, ow],
        }
    }

    /// Bias-free depthwise convolution, multiplier 1 ([`direct::depthwise::applies`]).
    pub fn depthwise(self, weight: Tensor<4>, g: Geometry) -> Self {
        let values = <Dispatch as SepnetKernels>::blocked_depthwise(
            self.values.into_dispatch(),
            weight.into_dispatch(),
            g,
        );
        BlockedTensor {
            values: Tensor::from_dispatch(values),
            dims: g.output(),
        }
    }

    /// A 2×2, stride-2, unpadded max pool.
    pub fn max_pool_2x2(self) -> Self {
        let [n, c, h, w] = self.dims;
        let values =
            <Dispatch as SepnetKernels>::blocked_max_pool(self.values.into_dispatch(), self.dims);
        BlockedTensor {
            values: Tensor::from_dispatch(values),
            dims: [n, c, h / 2, w / 2],
        }
    }
}
