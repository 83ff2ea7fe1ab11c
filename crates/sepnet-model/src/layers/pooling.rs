//! Max / average pooling (Keras `MaxPooling2D` / `AveragePooling2D`) and global average pooling.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::Padding;
use crate::kernels;

/// Which reduction a [`Pool2d`] applies to each window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolKind {
    /// Largest value of the window.
    Max,
    /// Mean of the window (padding excluded from the count, as in Keras).
    Average,
}

/// Configuration of a [`Pool2d`]. Keras's defaults: stride = pool size, `valid` padding.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use sepnet_model::layers::{Pool2dConfig, PoolKind};
/// let device = Device::flex();
/// let pool = Pool2dConfig::new(PoolKind::Max, [2, 2]).init(&device);
/// assert_eq!(pool.forward(Tensor::zeros([1, 4, 5, 5], &device)).dims(), [1, 4, 2, 2]);
/// ```
#[derive(Config, Debug)]
pub struct Pool2dConfig {
    /// Max or average.
    pub kind: PoolKind,
    /// Window `[height, width]`.
    pub size: [usize; 2],
    /// Stride; `None` means the window size.
    #[config(default = "None")]
    pub stride: Option<[usize; 2]>,
    /// Border handling.
    #[config(default = "Padding::Valid")]
    pub padding: Padding,
}

/// A pooling window sliding over each channel.
#[derive(Module, Debug)]
pub struct Pool2d {
    /// Window `[height, width]`.
    pub size: [usize; 2],
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    #[module(skip)]
    kind: PoolKind,
    #[module(skip)]
    padding: Padding,
}

impl Pool2dConfig {
    /// Creates the layer (it has no parameters; `device` is taken for symmetry).
    pub fn init(&self, _device: &Device) -> Pool2d {
        Pool2d {
            size: self.size,
            stride: self.stride.unwrap_or(self.size),
            kind: self.kind,
            padding: self.padding,
        }
    }
}

impl Pool2d {
    /// Whether this is a 2×2, stride-2 max pool that pads nothing on an input of `dims`.
    pub(crate) fn is_unpadded_max_2x2(&self, dims: [usize; 4]) -> bool {
        let pads = self
            .padding
            .pads_2d([dims[2], dims[3]], self.size, self.stride, [1, 1]);
        self.kind == PoolKind::Max
            && self.size == [2, 2]
            && self.stride == [2, 2]
            && pads == [(0, 0); 2]
    }

    /// `[batch, c, h, w]` → `[batch, c, h_out, w_out]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, height, width] = x.dims();
        let pads = self
            .padding
            .pads_2d([height, width], self.size, self.stride, [1, 1]);
        match self.kind {
            PoolKind::Max if kernels::applies_to(&x) => {
                let geometry =
                    kernels::Geometry::new(x.dims(), self.size, self.stride, [1, 1], pads);
                kernels::max_pool2d(x, geometry)
            }
            PoolKind::Max => max_pool2d(
                x,
                MaxPoolOptions::new(self.size)
                    .with_stride(self.stride)
                    .with_padding_pairs(pads),
            ),
            PoolKind::Average => avg_pool2d(
                x,
                AvgPoolOptions::new(self.size)
                    .with_stride(self.stride)
                    .with_padding_pairs(pads)
                    .with_count_include_pad(false),
            ),
        }
    }
}

/// Mean over the spatial axes: `[batch, c, h, w]` → `[batch, c]`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use sepnet_model::layers::GlobalAvgPool;
/// let device = Device::flex();
/// let y = GlobalAvgPool.forward(Tensor::<4>::ones([2, 7, 3, 3], &device));
/// assert_eq!(y.dims(), [2, 7]);
/// ```
#[derive(Module, Debug, Default)]
pub struct GlobalAvgPool;

impl GlobalAvgPool {
    /// Averages each channel's plane.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [batch, channels, height, width] = x.dims();
        x.reshape([batch, channels, height * width])
            .mean_dim(2)
            .reshape([batch, channels])
    }
}
