//! Quantization-aware training: the network trains through the weights int8 will hold.
//!
//! Each forward pass of a network with [`FakeQuant`] replaces every convolution's and dense
//! layer's weights by their int8 values (symmetric, one scale per tensor or per output
//! channel, rounding half to even — what `sepnet quantize` writes), with a BatchNorm that
//! follows a convolution folded in first, exactly as int8 folds it: the kernel quantized is
//! `W · γ / sqrt(σ² + ε)`, not `W`. Gradients pass the rounding unchanged (the
//! straight-through estimator of Krishnamoorthi, arXiv:1806.08342, §3). Every BatchNorm uses
//! its running statistics (frozen, as the whitepaper does after its first steps), so that the
//! kernel trained is the one folded. Activations stay float: int8's per-tensor activation
//! ranges come from calibration when the run is quantized.

use burn::tensor::Tensor;

use crate::kinds::{InvertedResidual, Layer, MobileBlock, SqueezeExcite};
use crate::layers::{
    Activation, BatchNorm, Conv2d, Dense, DepthwiseConv2d, DepthwiseSeparableBlock, SeparableConv2d,
};

/// How the weights are rounded in training: as int8 will round them.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use sepnet_model::{FakeQuant, Network, spec::NetworkSpec};
/// let device = Device::flex();
/// let spec = NetworkSpec::parse("conv:8:3,bn,relu,gap,dense:10", [8, 8, 1]).unwrap();
/// let net = Network::new(&spec, &device).unwrap();
/// let fq = FakeQuant { per_channel: false, weight_max: 127.0 };
/// let logits = net.with_fake_quant(Some(fq)).forward(Tensor::ones([2, 1, 8, 8], &device));
/// assert_eq!(logits.dims(), [2, 10]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FakeQuant {
    /// One scale per output channel (else one per tensor).
    pub per_channel: bool,
    /// The largest int8 magnitude: 127, or 64 for 7-bit weights.
    pub weight_max: f32,
}

impl FakeQuant {
    /// `weight` (a convolution's `[out, in, kh, kw]`) as int8 holds it once `fold` (the
    /// following BatchNorm's per-channel scale, if any) is folded in, with the gradient of
    /// `weight` itself.
    fn kernel(&self, weight: Tensor<4>, fold: Option<Tensor<1>>) -> Tensor<4> {
        let dims = weight.dims();
        let rows = [dims[0], dims[1] * dims[2] * dims[3]];
        let w = weight.clone().detach().reshape(rows);
        let effective = match fold {
            None => self.round(w),
            Some(scale) => {
                let scale = scale.detach().reshape([rows[0], 1]);
                // A channel whose BatchNorm scale is 0 folds to 0 whatever its kernel: it
                // keeps its kernel (divided by 1, not 0, and added back).
                let dead = scale.clone().equal_elem(0.0);
                let divisor = scale.clone().mask_fill(dead.clone(), 1.0);
                let rounded = self.round(w.clone() * scale) / divisor;
                rounded + w * dead.float()
            }
        };
        weight.clone() + (effective.reshape(dims) - weight).detach()
    }

    /// `weight` (a dense layer's `[in, units]`) as int8 holds it, with its own gradient.
    fn matrix(&self, weight: Tensor<2>) -> Tensor<2> {
        let rounded = self.round(weight.clone().detach().transpose()).transpose();
        weight.clone() + (rounded - weight).detach()
    }

    /// Rows `[out, n]` rounded to int8 steps: `clamp(round(w / s), −max, max) · s`, `s` the
    /// row's (or the whole tensor's) largest magnitude over `weight_max`, 1 where that is 0.
    fn round(&self, rows: Tensor<2>) -> Tensor<2> {
        let [out, _] = rows.dims();
        let largest = match self.per_channel {
            true => rows.clone().abs().max_dim(1),
            false => rows.clone().abs().max().reshape([1, 1]).expand([out, 1]),
        };
        let zero = largest.clone().equal_elem(0.0);
        let step = (largest / self.weight_max)
            .clamp_min(f32::MIN_POSITIVE)
            .mask_fill(zero, 1.0);
        (rows / step.clone())
            .round()
            .clamp(-self.weight_max, self.weight_max)
            * step
    }

    /// `conv` with its kernel rounded, `bn` (the BatchNorm after it, if any) folded in.
    fn conv(&self, conv: &Conv2d, bn: Option<&BatchNorm>) -> Conv2d {
        let fold = folding(bn, conv.epilogue().1);
        let mut conv = conv.clone();
        conv.weight = conv.weight.map(|w| self.kernel(w, fold));
        conv
    }

    fn depthwise(&self, conv: &DepthwiseConv2d, bn: Option<&BatchNorm>) -> DepthwiseConv2d {
        let fold = folding(bn, conv.activation());
        let mut conv = conv.clone();
        conv.weight = conv.weight.map(|w| self.kernel(w, fold));
        conv
    }

    fn dense(&self, dense: &Dense) -> Dense {
        let mut dense = dense.clone();
        dense.weight = dense.weight.map(|w| self.matrix(w));
        dense
    }

    fn pair(&self, (conv, bn): &(Conv2d, BatchNorm)) -> (Conv2d, BatchNorm) {
        (self.conv(conv, Some(bn)), bn.frozen())
    }

    fn squeeze_excite(&self, se: &SqueezeExcite) -> SqueezeExcite {
        SqueezeExcite {
            reduce: self.conv(&se.reduce, None),
            expand: self.conv(&se.expand, None),
        }
    }

    /// `layer` as it runs in training: weights rounded, BatchNorms frozen; `next` is the
    /// layer after it (a BatchNorm there folds into this layer's kernel).
    pub(crate) fn layer(&self, layer: &Layer, next: Option<&Layer>) -> Layer {
        let bn = match next {
            Some(Layer::BatchNorm(bn)) => Some(bn),
            _ => None,
        };
        match layer {
            Layer::Conv(c) => Layer::Conv(self.conv(c, bn)),
            Layer::Depthwise(d) => Layer::Depthwise(self.depthwise(d, bn)),
            Layer::Separable(s) => Layer::Separable(self.separable(s, bn)),
            Layer::DwSep(b) => Layer::DwSep(self.dwsep(b)),
            Layer::InvertedResidual(b) => Layer::InvertedResidual(self.inverted_residual(b)),
            Layer::SqueezeExcite(se) => Layer::SqueezeExcite(self.squeeze_excite(se)),
            Layer::Bneck(b) => Layer::Bneck(self.mobile_block(b)),
            Layer::MbConv(b) => Layer::MbConv(self.mobile_block(b)),
            Layer::BatchNorm(bn) => Layer::BatchNorm(bn.frozen()),
            Layer::Dense(d) => Layer::Dense(self.dense(d)),
            other => other.clone(),
        }
    }

    fn separable(&self, s: &SeparableConv2d, bn: Option<&BatchNorm>) -> SeparableConv2d {
        SeparableConv2d {
            conv_dw: self.depthwise(&s.conv_dw, None),
            conv_pw: self.conv(&s.conv_pw, bn),
        }
    }

    fn dwsep(&self, b: &DepthwiseSeparableBlock) -> DepthwiseSeparableBlock {
        let mut b = b.clone();
        b.conv_dw = self.depthwise(&b.conv_dw, Some(&b.bn_dw));
        b.conv_pw = self.conv(&b.conv_pw, Some(&b.bn_pw));
        (b.bn_dw, b.bn_pw) = (b.bn_dw.frozen(), b.bn_pw.frozen());
        b
    }

    fn inverted_residual(&self, b: &InvertedResidual) -> InvertedResidual {
        InvertedResidual {
            expand: b.expand.as_ref().map(|pair| self.pair(pair)),
            conv_dw: self.depthwise(&b.conv_dw, Some(&b.bn_dw)),
            bn_dw: b.bn_dw.frozen(),
            project: self.conv(&b.project, Some(&b.bn_project)),
            bn_project: b.bn_project.frozen(),
            residual: b.residual,
        }
    }

    fn mobile_block(&self, b: &MobileBlock) -> MobileBlock {
        let mut b = b.clone();
        b.expand = b.expand.as_ref().map(|pair| self.pair(pair));
        b.conv_dw = self.depthwise(&b.conv_dw, Some(&b.bn_dw));
        b.se = b.se.as_ref().map(|se| self.squeeze_excite(se));
        b.project = self.conv(&b.project, Some(&b.bn_project));
        (b.bn_dw, b.bn_project) = (b.bn_dw.frozen(), b.bn_project.frozen());
        b
    }
}

/// The scale of `bn` that int8 folds into the convolution before it — none when that
/// convolution applies an `activation` of its own, which stands between them.
fn folding(bn: Option<&BatchNorm>, activation: Activation) -> Option<Tensor<1>> {
    bn.filter(|_| activation == Activation::Linear)
        .map(BatchNorm::folding_scale)
}

impl BatchNorm {
    /// The per-channel scale `γ / sqrt(σ² + ε)` int8 folds into the convolution before it.
    fn folding_scale(&self) -> Tensor<1> {
        let bn = &self.inner;
        let var = bn.running_var.value().to_device(&bn.gamma.val().device());
        bn.gamma.val() / (var + bn.epsilon).sqrt()
    }

    /// This BatchNorm normalising with its running statistics, even in training.
    fn frozen(&self) -> BatchNorm {
        let mut bn = self.clone();
        bn.inner.training = bn.inner.training.with_value(false);
        bn
    }
}

#[cfg(test)]
mod tests;
