//! One training step — forward, cross-entropy, backward, optimizer update — as `train` runs it
//! and `bench` times it.

use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Int, Tensor};
use sepnet_model::Classifier;

/// What a step leaves behind besides the updated model.
pub struct StepOutput<M> {
    /// The updated model.
    pub model: M,
    /// Mean loss of the batch (off the autodiff graph).
    pub loss: Tensor<1>,
    /// Logits of the batch (off the autodiff graph), for accuracy.
    pub logits: Tensor<2>,
}

/// Runs one optimizer step of `model` (any [`Classifier`], on an autodiff device) on a batch
/// at learning rate `lr`.
pub fn train_step<M: Classifier>(
    model: M,
    optim: &mut ModuleOptimizer,
    loss_fn: &CrossEntropyLoss,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    lr: f64,
) -> StepOutput<M> {
    minimise(model, optim, images, lr, |logits| {
        loss_fn.forward(logits, labels)
    })
}

/// One optimizer step of `model` on `images`, minimising `loss` of its logits.
pub(crate) fn minimise<M: Classifier>(
    model: M,
    optim: &mut ModuleOptimizer,
    images: Tensor<4>,
    lr: f64,
    loss: impl FnOnce(Tensor<2>) -> Tensor<1>,
) -> StepOutput<M> {
    let (grads, loss, logits) = gradients(&model, images, loss);
    StepOutput {
        model: optim.step(lr, model, grads),
        loss,
        logits,
    }
}

/// The gradients of `loss` of `model`'s logits on `images`, with the loss and the logits (off
/// the autodiff graph).
pub(crate) fn gradients<M: Classifier>(
    model: &M,
    images: Tensor<4>,
    loss: impl FnOnce(Tensor<2>) -> Tensor<1>,
) -> (GradientsParams, Tensor<1>, Tensor<2>) {
    let logits = model.forward(images);
    let loss = loss(logits.clone());
    let grads = GradientsParams::from_grads(loss.backward(), model);
    (grads, loss.inner(), logits.inner())
}
