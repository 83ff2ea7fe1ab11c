//! What builds the model a run trains: a spec (sepnet's networks) or the constructor a user
//! registered for a module of their own ([`crate::custom`]).

use burn::tensor::Device;
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Classifier, FakeQuant, Network, draw_weights_now};

use crate::TrainError;

/// A constructor of fresh models on a device.
type Build<'b, M> = Box<dyn Fn(&Device) -> Result<M, TrainError> + 'b>;

/// Builds a run's model with fresh weights, as often as the run needs one (the model trained,
/// a fresh copy for the best checkpoint's test).
pub(crate) struct Blueprint<'b, M> {
    build: Build<'b, M>,
    /// The spec of a [`Network`], which names the layer a message is about.
    pub(crate) spec: Option<NetworkSpec>,
}

impl Blueprint<'static, Network> {
    /// The network `spec` describes, trained through int8 weights with `fake_quant`.
    pub(crate) fn of_spec(spec: NetworkSpec, fake_quant: Option<FakeQuant>) -> Self {
        let text = spec.clone();
        Blueprint {
            build: Box::new(move |device| {
                Network::new(&text, device)
                    .map(|net| net.with_fake_quant(fake_quant))
                    .map_err(|e| TrainError::Config(e.message))
            }),
            spec: Some(spec),
        }
    }
}

impl<'b, M: Classifier> Blueprint<'b, M> {
    /// A module of the user's own, built by `build`.
    pub(crate) fn of_module(build: impl Fn(&Device) -> Result<M, TrainError> + 'b) -> Self {
        Blueprint {
            build: Box::new(build),
            spec: None,
        }
    }

    /// A fresh model on `device`, every weight drawn now by the CPU backend seeded with `seed`
    /// and then moved: each backend's RNG draws other numbers from one seed, and a run on the
    /// GPU must start from the weights the same run on the CPU starts from.
    pub(crate) fn build(&self, device: &Device, seed: u64) -> Result<M, TrainError> {
        // Under autodiff on the host too: a parameter drawn on a plain device is a constant,
        // and moving it to a training device would not make it trainable again.
        let host = match device.is_autodiff() {
            true => Device::flex().autodiff(),
            false => Device::flex(),
        };
        host.seed(seed);
        let model = draw_weights_now((self.build)(&host)?);
        Ok(model.fork(device))
    }

    /// How a message names the layer at `index` of a spec-built network, e.g. `` (`conv:8:3`)``.
    pub(crate) fn layer_name(&self, index: usize) -> String {
        self.spec
            .as_ref()
            .and_then(|s| s.layers.get(index))
            .map_or(String::new(), |l| format!(" (`{l}`)"))
    }
}
