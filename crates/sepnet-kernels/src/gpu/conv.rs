//! A full convolution (one group, no bias) as a tiled implicit matrix product, in CubeCL.
//!
//! Seen as a matrix product, a convolution multiplies `A [M, K]` by `B [K, F]`: `M` counts the
//! output pixels (`batch × out_h × out_w`), `K` one window (`channels × k_h × k_w`), `F` the
//! filters. `A` is never written out (im2col's extra pass over memory): each cube gathers its
//! `A` tile straight from the NCHW input into shared memory, zero where the window hangs over
//! the padding, beside the matching tile of the weights (`[F, K]`, as burn stores them).
//! burn-wgpu's only candidate on WGSL (`conv_direct`) computes one output per thread from
//! global memory; here each value brought into shared memory feeds [`PER_THREAD`] FMAs, and
//! each thread keeps a `4 × 4` block of outputs in registers (plain FMAs: WGSL has no
//! tensor-core instructions).

use burn::tensor::Shape;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use crate::Geometry;

/// Output pixels per cube.
const TILE_M: usize = 64;
/// Filters per cube.
const TILE_F: usize = 64;
/// A row of the weight tile in shared memory: one longer than [`TILE_F`], so the 16 threads
/// that store one filter's 16 window values write 16 different banks.
const ROW_F: usize = TILE_F + 1;
/// Window elements per step through `K`.
const TILE_K: usize = 16;
/// Threads per cube along each axis.
const THREADS: usize = 16;
/// Outputs per thread along each axis (`THREADS × PER_THREAD` is a tile's side).
const PER_THREAD: usize = 4;

/// Where the window reads: everything about the convolution but the tensors (the bottom and
/// right padding follow from the output's size).
#[derive(CubeLaunch, CubeType)]
pub(super) struct Window {
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

/// The [`Window`] of `geometry`, for a launch.
pub(super) fn window_of(geometry: &Geometry) -> WindowLaunch {
    let [top, _, left, _] = geometry.pads;
    WindowLaunch::new(
        geometry.stride[0],
        geometry.stride[1],
        geometry.dilation[0],
        geometry.dilation[1],
        top,
        left,
    )
}

/// `A[m, k]` for the pixel whose window starts at padded `(row, col)` of `image`: the input
/// under window position `k`, 0 in the padding.
#[cube]
fn gather(
    x: &Tensor<f32>,
    image: usize,
    row: usize,
    col: usize,
    k: usize,
    w: &Tensor<f32>,
    window: &Window,
) -> f32 {
    let (channels, in_h, in_w) = (x.shape(1), x.shape(2), x.shape(3));
    let k_w = w.shape(3);
    let k_window = w.shape(2) * k_w;
    let c = k / k_window;
    let tap = k % k_window;
    let r = row + (tap / k_w) * window.dilation_h;
    let q = col + (tap % k_w) * window.dilation_w;
    let mut value = 0.0f32;
    let inside_rows = r >= window.pad_top && r < in_h + window.pad_top;
    if inside_rows && q >= window.pad_left && q < in_w + window.pad_left {
        value =
            x[((image * channels + c) * in_h + r - window.pad_top) * in_w + q - window.pad_left];
    }
    value
}

/// One cube: a `TILE_M × TILE_F` block of the output, `16 × 16` threads of `4 × 4` outputs.
#[cube(launch)]
fn conv_tiled_kernel(x: &Tensor<f32>, w: &Tensor<f32>, y: &mut Tensor<f32>, window: Window) {
    let filters = w.shape(0);
    let k_total = w.shape(1) * w.shape(2) * w.shape(3);
    let out_w = y.shape(3);
    let out_hw = y.shape(2) * out_w;
    let m_total = y.shape(0) * out_hw;
    let (tx, ty) = (UNIT_POS_X as usize, UNIT_POS_Y as usize);
    let thread = ty * THREADS + tx;
    let m0 = CUBE_POS_X as usize * TILE_M;
    let f0 = CUBE_POS_Y as usize * TILE_F;

    let mut a_tile = Shared::<[f32]>::new_slice(TILE_K * TILE_M);
    let mut b_tile = Shared::<[f32]>::new_slice(TILE_K * ROW_F);
    let mut acc = Array::<f32>::new(PER_THREAD * PER_THREAD);
    let mut b = Array::<f32>::new(PER_THREAD);
    #[unroll]
    for i in 0..PER_THREAD * PER_THREAD {
        acc[i] = 0.0f32;
    }

    // The pixel this thread gathers `A` for, the same at every step through `K`.
    let a_m = thread % TILE_M;
    let a_k = thread / TILE_M;
    let m = m0 + a_m;
    let rest = m % out_hw;
    let (image, row, col) = (
        m / out_hw,
        (rest / out_w) * window.stride_h,
        (rest % out_w) * window.stride_w,
    );
    // The window position this thread loads weights at.
    let b_k = thread % TILE_K;
    let b_f = thread / TILE_K;

    let mut k0 = 0usize;
    while k0 < k_total {
        #[unroll]
        for r in 0..TILE_K * TILE_M / (THREADS * THREADS) {
            let kk = a_k + r * (THREADS * THREADS / TILE_M);
            let mut value = 0.0f32;
            if m < m_total && k0 + kk < k_total {
                value = gather(x, image, row, col, k0 + kk, w, &window);
            }
            a_tile[kk * TILE_M + a_m] = value;
        }
        #[unroll]
        for r in 0..TILE_K * TILE_F / (THREADS * THREADS) {
            let ff = b_f + r * (THREADS * THREADS / TILE_K);
            let mut value = 0.0f32;
            if f0 + ff < filters && k0 + b_k < k_total {
                value = w[(f0 + ff) * k_total + k0 + b_k];
            }
            b_tile[b_k * ROW_F + ff] = value;
        }
        sync_cube();
        #[unroll]
        for kk in 0..TILE_K {
            #[unroll]
            for j in 0..PER_THREAD {
                b[j] = b_tile[kk * ROW_F + ty + j * THREADS];
            }
            #[unroll]
            for i in 0..PER_THREAD {
                let a = a_tile[kk * TILE_M + tx + i * THREADS];
                #[unroll]
                for j in 0..PER_THREAD {
                    acc[i * PER_THREAD + j] += a * b[j];
                }
            }
        }
        sync_cube();
        k0 += TILE_K;
    }

    store(&acc, y, m0, f0);
}

/// Writes a thread's `4 × 4` outputs, those inside the output, to the NCHW `y`: neighbouring
/// threads write neighbouring pixels.
#[cube]
fn store(acc: &Array<f32>, y: &mut Tensor<f32>, m0: usize, f0: usize) {
    let filters = y.shape(1);
    let out_hw = y.shape(2) * y.shape(3);
    let m_total = y.shape(0) * out_hw;
    #[unroll]
    for i in 0..PER_THREAD {
        let m = m0 + UNIT_POS_X as usize + i * THREADS;
        if m < m_total {
            let (image, pixel) = (m / out_hw, m % out_hw);
            #[unroll]
            for j in 0..PER_THREAD {
                let f = f0 + UNIT_POS_Y as usize + j * THREADS;
                if f < filters {
                    y[(image * filters + f) * out_hw + pixel] = acc[i * PER_THREAD + j];
                }
            }
        }
    }
}

/// Whether one launch covers a convolution of `geometry`: a launch has at most 65,535 cubes
/// along an axis.
pub(super) fn fits(geometry: &Geometry) -> bool {
    let [batch, _, _, _] = geometry.input;
    let [out_h, out_w] = geometry.output_hw();
    (batch * out_h * out_w).div_ceil(TILE_M) <= u16::MAX as usize
}

/// The convolution of NCHW `x` by `weight [f, c, k_h, k_w]` where `geometry` says.
pub(super) fn conv2d_tiled(x: CubeTensor, weight: CubeTensor, geometry: Geometry) -> CubeTensor {
    let (x, weight) = (into_contiguous(x), into_contiguous(weight));
    let [batch, _, _, _] = geometry.input;
    let [out_h, out_w] = geometry.output_hw();
    let filters = weight.meta.shape()[0];
    let shape = Shape::new([batch, filters, out_h, out_w]);
    let y = empty_device_dtype(x.client.clone(), x.device.clone(), shape, x.dtype);
    let cubes = CubeCount::Static(
        (batch * out_h * out_w).div_ceil(TILE_M) as u32,
        filters.div_ceil(TILE_F) as u32,
        1,
    );
    let client = x.client.clone();
    conv_tiled_kernel::launch(
        &client,
        cubes,
        CubeDim::new_2d(THREADS as u32, THREADS as u32),
        x.into_tensor_arg(),
        weight.into_tensor_arg(),
        y.clone().into_tensor_arg(),
        window_of(&geometry),
    );
    y
}
