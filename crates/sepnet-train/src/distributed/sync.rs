//! The one collective call of a data-parallel step: every process's gradients, BatchNorm
//! running statistics and step totals, weighted by its images, packed into one buffer,
//! summed over the processes and divided by the job's images. The result is what one
//! process computes on the whole global batch (up to the order of the floating-point sums).

use std::time::Instant;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::Collective;

/// What a step adds up besides the gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Totals {
    /// Sum of the per-image losses.
    pub loss_sum: f32,
    /// Correct predictions.
    pub correct: f32,
    /// Images.
    pub images: f32,
    /// Processes that were asked to stop (Ctrl-C, SIGTERM) before this step.
    pub stops: f32,
}

impl Totals {
    const LEN: usize = 4;

    fn to_array(self) -> [f32; Totals::LEN] {
        [self.loss_sum, self.correct, self.images, self.stops]
    }
}

/// The job's step: averaged gradients, the model with averaged running statistics, the
/// summed totals, and the seconds the collective took.
pub(crate) struct Synced<M> {
    pub model: M,
    pub grads: GradientsParams,
    pub totals: Totals,
    pub seconds: f64,
}

/// Sums this process's step (`grads` of the mean loss over `local.images` images) with every
/// other process's, and returns the job's mean. `device` is where gradients live (the
/// training device without autodiff).
pub(crate) fn all_reduce<M: Module>(
    world: &dyn Collective,
    model: M,
    mut grads: GradientsParams,
    local: Totals,
    device: &Device,
) -> Synced<M> {
    // burn keeps a BatchNorm's newest running statistics pending until something syncs them;
    // `valid()` does, so the pack reads (and the unpack replaces) the newest values.
    drop(model.valid());
    let mut pack = Pack {
        grads: &mut grads,
        weight: local.images,
        values: Vec::new(),
    };
    model.visit(&mut pack);
    let mut values = pack.values;
    values.extend(local.to_array());
    let started = Instant::now();
    world.sum(&mut values);
    let seconds = started.elapsed().as_secs_f64();
    let at = values.len() - Totals::LEN;
    let totals = Totals {
        loss_sum: values[at],
        correct: values[at + 1],
        images: values[at + 2],
        stops: values[at + 3],
    };
    let mut unpack = Unpack {
        grads: GradientsParams::new(),
        values: &values[..at],
        scale: 1.0 / totals.images,
        device,
    };
    let model = model.map(&mut unpack);
    Synced {
        model,
        grads: unpack.grads,
        totals,
        seconds,
    }
}

/// Appends, in the model's parameter order, each trained parameter's gradient (zeros when
/// this process saw no image) and each running statistic, times this process's images.
struct Pack<'a> {
    grads: &'a mut GradientsParams,
    weight: f32,
    values: Vec<f32>,
}

impl ModuleVisitor for Pack<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = match param.is_require_grad() {
            true => self.grads.remove::<D>(param.id),
            false => Some(param.val()),
        };
        match value {
            Some(tensor) => {
                let data = tensor.into_data();
                self.values
                    .extend(data.iter::<f32>().map(|v| v * self.weight));
            }
            None => {
                let n = param.val().shape().num_elements();
                self.values.extend(std::iter::repeat_n(0.0, n));
            }
        }
    }
}

/// Takes the summed values back in the same order: gradients into a fresh
/// [`GradientsParams`], running statistics into the model, each divided by the job's images.
struct Unpack<'a> {
    grads: GradientsParams,
    values: &'a [f32],
    scale: f32,
    device: &'a Device,
}

impl Unpack<'_> {
    fn next<const D: usize>(&mut self, shape: burn::tensor::Shape, device: &Device) -> Tensor<D> {
        let (mine, rest) = self.values.split_at(shape.num_elements());
        self.values = rest;
        let mean: Vec<f32> = mine.iter().map(|v| v * self.scale).collect();
        Tensor::from_data(TensorData::new(mean, shape), device)
    }
}

impl ModuleMapper for Unpack<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let value = param.val();
        let shape = value.shape();
        if param.is_require_grad() {
            let device = self.device;
            let grad = self.next::<D>(shape, device);
            self.grads.register(param.id, grad);
            return param;
        }
        let running = self.next::<D>(shape, &value.device());
        param.map(|_| running)
    }
}

/// SHA-256 of every weight and running statistic of `model` (little-endian `f32`s in the
/// model's parameter order): equal on two processes exactly when they hold the same values,
/// whatever ids burn gave the parameters.
pub(crate) fn fingerprint<M: Module>(model: &M) -> String {
    use sha2::{Digest, Sha256};
    struct Hash(Sha256);
    impl ModuleVisitor for Hash {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            for v in param.val().into_data().iter::<f32>() {
                self.0.update(v.to_le_bytes());
            }
        }
    }
    let mut hash = Hash(Sha256::new());
    model.valid().visit(&mut hash);
    hash.0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
