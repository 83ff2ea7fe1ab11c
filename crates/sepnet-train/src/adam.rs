//! Adam with sepnet's one-pass update where its kernels apply (f32 on the CPU), burn's Adam
//! elsewhere. Same arithmetic and the same state type as burn's, so the two give the same
//! bits and read each other's checkpoints.

use burn::optim::{
    Adam as BurnAdam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, Optimizer,
};
use burn::tensor::{Device, Tensor};
use sepnet_model::kernels::{self, adam::Coefficients};

/// Adam without weight decay or AMSGrad (those run as burn's Adam).
#[derive(Clone)]
pub(crate) struct Adam {
    burn: BurnAdam,
    betas: [f32; 2],
    epsilon: f32,
}

impl Adam {
    /// Adam with PyTorch's defaults (β 0.9 / 0.999, ε 1e-8).
    pub(crate) fn new() -> Adam {
        let (betas, epsilon) = ([0.9, 0.999], 1e-8);
        let burn = AdamConfig::new()
            .with_beta_1(betas[0])
            .with_beta_2(betas[1])
            .with_epsilon(epsilon)
            .build();
        Adam {
            burn,
            betas,
            epsilon,
        }
    }
}

impl Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        // The first step (no moments yet) is burn's: it happens once per parameter.
        let momentum = match state {
            Some(AdamState { momentum }) if kernels::applies_to(&tensor) => momentum,
            state => return self.burn.step(lr, tensor, grad, state),
        };
        let time = momentum.time + 1;
        let coefficients = Coefficients::new(self.betas, self.epsilon, time, lr);
        let moments = [momentum.moment_1, momentum.moment_2];
        let (tensor, [moment_1, moment_2]) =
            kernels::adam_update(tensor, grad, moments, coefficients);
        let momentum = AdaptiveMomentumState {
            time,
            moment_1,
            moment_2,
            max_moment_2: None,
        };
        (tensor, Some(AdamState { momentum }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        BurnAdam::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::optim::ModuleOptimizer;
    use burn::tensor::{Distribution, Int, TensorData};
    use sepnet_model::Network;
    use sepnet_model::spec::NetworkSpec;

    use super::*;
    use crate::checkpoint;
    use crate::step::train_step;

    fn weights(model: &Network) -> Vec<u8> {
        checkpoint::model_bytes(model).unwrap()
    }

    /// Five steps with this Adam and with burn's give the same weights to the bit, and each
    /// continues from the other's saved state as from its own.
    #[test]
    fn same_bits_as_burns_adam_and_interchangeable_state() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let spec = NetworkSpec::parse("conv:4:3,bn,relu,sep:8:3,flatten,dense:10", [8, 8, 1]);
        let model = Network::new(&spec.unwrap(), &device).unwrap();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);
        let images = Tensor::<4>::random([6, 1, 8, 8], Distribution::Default, &device);
        let labels = || Tensor::<1, Int>::from_data(TensorData::from([1, 4, 2, 9, 0, 3]), &device);
        let burns = || AdamConfig::new().with_epsilon(1e-8).init();
        let run = |mut model: Network, optim: &mut ModuleOptimizer, steps: usize| {
            for step in 0..steps {
                let lr = 0.01 / (step + 1) as f64;
                let out = train_step(model, optim, &loss_fn, images.clone(), labels(), lr);
                model = out.model;
            }
            model
        };
        let (mut ours, mut theirs) = (ModuleOptimizer::from(Adam::new()), burns());
        let a = run(model.clone(), &mut ours, 5);
        let b = run(model.clone(), &mut theirs, 5);
        assert_eq!(weights(&a), weights(&b));

        // Swap the saved optimizer states and continue both.
        let saved = [ours.into_bytes().unwrap(), theirs.into_bytes().unwrap()];
        let ours = ModuleOptimizer::from(Adam::new()).from_bytes(saved[1].clone());
        let theirs = burns().from_bytes(saved[0].clone());
        let a = run(a, &mut ours.unwrap(), 3);
        let b = run(b, &mut theirs.unwrap(), 3);
        assert_eq!(weights(&a), weights(&b));
        assert_ne!(
            weights(&a),
            weights(&model),
            "the steps changed the weights"
        );
    }
}
