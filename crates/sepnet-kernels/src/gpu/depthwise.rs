//! A depthwise convolution with its bias and activation in one pass, and the activation's
//! gradient, in CubeCL.
//!
//! burn-wgpu's depthwise kernel refuses a bias, so a depthwise layer with one cost three
//! passes over its output there (convolution, bias, activation); here each thread computes
//! one output from its `k_h × k_w` window, adds the bias and clamps it before the only write.
//! The window's reads run along the output row, so neighbouring threads read neighbouring
//! input (coalesced); a depthwise convolution does `k_h × k_w` FMAs per output and is bound
//! by memory, not arithmetic, so nothing is staged in shared memory.

use burn::backend::TensorMetadata;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::conv::{Window, window_of};
use crate::Fused;
use crate::Geometry;

/// The code a kernel is compiled for per activation (a `comptime` value).
fn code(activation: Fused) -> u32 {
    match activation {
        Fused::Linear => 0,
        Fused::Relu => 1,
        Fused::Relu6 => 2,
    }
}

/// `act(v)` for the activation `code` names.
#[cube]
fn activate(v: f32, #[comptime] activation: u32) -> f32 {
    let mut out = v;
    if comptime!(activation == 1) {
        out = max(v, 0.0f32);
    } else if comptime!(activation == 2) {
        out = min(max(v, 0.0f32), 6.0f32);
    }
    out
}

/// One thread per output `y[n, c·m + j, oh, ow]`.
#[cube(launch)]
fn depthwise_kernel(
    x: &Tensor<f32>,
    w: &Tensor<f32>,
    bias: &Tensor<f32>,
    y: &mut Tensor<f32>,
    window: Window,
    #[comptime] activation: u32,
) {
    if ABSOLUTE_POS >= y.len() {
        terminate!();
    }
    let (out_c, out_h, out_w) = (y.shape(1), y.shape(2), y.shape(3));
    let ow = ABSOLUTE_POS % out_w;
    let oh = (ABSOLUTE_POS / out_w) % out_h;
    let co = (ABSOLUTE_POS / (out_w * out_h)) % out_c;
    let image = ABSOLUTE_POS / (out_w * out_h * out_c);
    let (channels, in_h, in_w) = (x.shape(1), x.shape(2), x.shape(3));
    let (k_h, k_w) = (w.shape(2), w.shape(3));
    let plane = (image * channels + co / (out_c / channels)) * in_h * in_w;
    let mut sum = bias[co];
    for kh in 0..k_h {
        let r = oh * window.stride_h + kh * window.dilation_h;
        if r >= window.pad_top && r < in_h + window.pad_top {
            let row = plane + (r - window.pad_top) * in_w;
            for kw in 0..k_w {
                let q = ow * window.stride_w + kw * window.dilation_w;
                if q >= window.pad_left && q < in_w + window.pad_left {
                    sum += x[row + q - window.pad_left] * w[(co * k_h + kh) * k_w + kw];
                }
            }
        }
    }
    y[ABSOLUTE_POS] = activate(sum, activation);
}

/// `dy · act'(y)` from an activation's output `y`.
#[cube(launch)]
fn activation_grad_kernel(
    y: &Tensor<f32>,
    dy: &Tensor<f32>,
    dz: &mut Tensor<f32>,
    #[comptime] activation: u32,
) {
    if ABSOLUTE_POS >= dz.len() {
        terminate!();
    }
    let v = y[ABSOLUTE_POS];
    // Where the activation passes its input on (slope 1); elsewhere it is flat.
    let mut passes = true;
    if comptime!(activation == 1) {
        passes = v > 0.0f32;
    } else if comptime!(activation == 2) {
        passes = v > 0.0f32 && v < 6.0f32;
    }
    let mut g = 0.0f32;
    if passes {
        g = dy[ABSOLUTE_POS];
    }
    dz[ABSOLUTE_POS] = g;
}

/// Threads per cube of the element-wise launches.
const THREADS: u32 = 256;

/// Cubes for one thread per element of `len`, laid out in two dimensions when one would pass
/// the 65,535 limit (the kernels index by `ABSOLUTE_POS`, which spans both).
fn cubes_for(len: usize) -> CubeCount {
    let cubes = len.div_ceil(THREADS as usize) as u32;
    let x = cubes.min(u16::MAX as u32);
    CubeCount::Static(x, cubes.div_ceil(x), 1)
}

/// `act(depthwise(x, weight) + bias)` where `geometry` says (its multiplier included).
pub(super) fn depthwise_bias_act(
    x: CubeTensor,
    weight: CubeTensor,
    bias: CubeTensor,
    geometry: Geometry,
    activation: Fused,
) -> CubeTensor {
    let (x, weight, bias) = (
        into_contiguous(x),
        into_contiguous(weight),
        into_contiguous(bias),
    );
    let shape = burn::tensor::Shape::new(geometry.output());
    let len = shape.num_elements();
    let y = empty_device_dtype(x.client.clone(), x.device.clone(), shape, x.dtype);
    let client = x.client.clone();
    depthwise_kernel::launch(
        &client,
        cubes_for(len),
        CubeDim::new_1d(THREADS),
        x.into_tensor_arg(),
        weight.into_tensor_arg(),
        bias.into_tensor_arg(),
        y.clone().into_tensor_arg(),
        window_of(&geometry),
        code(activation),
    );
    y
}

/// `dy · act'(y)`.
pub(super) fn activation_grad(y: CubeTensor, dy: CubeTensor, activation: Fused) -> CubeTensor {
    let (y, dy) = (into_contiguous(y), into_contiguous(dy));
    let shape = dy.shape();
    let dz = empty_device_dtype(
        dy.client.clone(),
        dy.device.clone(),
        shape.clone(),
        dy.dtype,
    );
    let client = dy.client.clone();
    activation_grad_kernel::launch(
        &client,
        cubes_for(shape.num_elements()),
        CubeDim::new_1d(THREADS),
        y.into_tensor_arg(),
        dy.into_tensor_arg(),
        dz.clone().into_tensor_arg(),
        code(activation),
    );
    dz
}
