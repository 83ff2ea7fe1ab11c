//! Fake quantization against plain loops: the kernel folded, then rounded as int8 rounds it;
//! gradients through the rounding; BatchNorm frozen.

use burn::module::{Module, Param, RunningState};
use burn::tensor::{Device, Distribution, Tensor};

use super::*;
use crate::Network;
use crate::spec::NetworkSpec;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec().unwrap()
}

/// The plain reference: fold `scale` into each output channel's row, round to
/// `max |row| / weight_max` steps (or the whole tensor's), unfold.
fn reference(w: &[f32], scale: &[f32], fq: FakeQuant) -> Vec<f32> {
    let per_out = w.len() / scale.len();
    let folded: Vec<f32> = w
        .iter()
        .enumerate()
        .map(|(i, v)| v * scale[i / per_out])
        .collect();
    let largest = |rows: &[f32]| rows.iter().fold(0f32, |m, v| m.max(v.abs()));
    let whole = largest(&folded);
    let mut out = Vec::with_capacity(w.len());
    for (o, row) in folded.chunks(per_out).enumerate() {
        let m = if fq.per_channel { largest(row) } else { whole };
        let step = if m == 0.0 { 1.0 } else { m / fq.weight_max };
        for (j, v) in row.iter().enumerate() {
            let rounded = (v / step)
                .round_ties_even()
                .clamp(-fq.weight_max, fq.weight_max);
            out.push(match scale[o] {
                0.0 => w[o * per_out + j],
                s => rounded * step / s,
            });
        }
    }
    out
}

#[test]
fn the_kernel_is_folded_then_rounded_as_int8_rounds_it() {
    let device = Device::flex();
    let w = Tensor::<4>::random([6, 3, 3, 3], Distribution::Normal(0.0, 1.0), &device);
    // Channel 0 dead (γ = 0), channel 1 tiny, channel 2 huge: per-tensor rounds most to 0.
    let scale = [0.0f32, 1e-3, 300.0, 1.0, 0.5, -2.0];
    for (per_channel, weight_max) in [(false, 127.0), (true, 127.0), (true, 64.0)] {
        let fq = FakeQuant {
            per_channel,
            weight_max,
        };
        let fold = Tensor::<1>::from_floats(scale.as_slice(), &device);
        let got = values(fq.kernel(w.clone(), Some(fold)));
        let want = reference(&values(w.clone()), &scale, fq);
        for (i, (g, r)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - r).abs() <= 1e-5 * r.abs().max(1e-3),
                "{fq:?} weight {i}: got {g}, want {r}"
            );
        }
        let unfolded = values(fq.kernel(w.clone(), None));
        let want = reference(&values(w.clone()), &[1.0; 6], fq);
        assert_eq!(unfolded, want, "{fq:?} without a BatchNorm");
    }
}

#[test]
fn dense_weights_round_per_unit() {
    let device = Device::flex();
    // [in 3, units 2]: unit 1's weights are 100× unit 0's.
    let w = Tensor::<1>::from_floats([0.1, 10.0, 0.2, -20.0, 0.3, 30.0], &device).reshape([3, 2]);
    let per_channel = FakeQuant {
        per_channel: true,
        weight_max: 127.0,
    };
    let got = values(per_channel.matrix(w.clone()));
    let unit0_step = 0.3 / 127.0;
    assert!((got[0] - (0.1f32 / unit0_step).round() * unit0_step).abs() < 1e-7);
    let per_tensor = FakeQuant {
        per_channel: false,
        ..per_channel
    };
    let got = values(per_tensor.matrix(w));
    assert_eq!(
        &got[..1],
        &[0.0],
        "per tensor, unit 0 falls below one step of 30/127"
    );
}

#[test]
fn gradients_pass_the_rounding_unchanged() {
    let device = Device::flex().autodiff();
    let w =
        Tensor::<4>::random([4, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let fold = Tensor::<1>::from_floats([0.5, 2.0, 1e-3, 7.0], &device);
    let upstream = Tensor::<4>::random([4, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device);
    let fq = FakeQuant {
        per_channel: false,
        weight_max: 127.0,
    };
    let loss = (fq.kernel(w.clone(), Some(fold)) * upstream.clone()).sum();
    let grads = loss.backward();
    let grad = w.grad(&grads).expect("a gradient for the kernel");
    assert_eq!(values(grad), values(upstream.inner()));
}

fn trained_like(text: &str, device: &Device) -> Network {
    let spec = NetworkSpec::parse(text, [8, 8, 2]).unwrap();
    let mut net = Network::new(&spec, device).unwrap();
    if let crate::Layer::BatchNorm(bn) = &mut net.layers[1] {
        let n = bn.inner.gamma.dims()[0];
        let random = |lo, hi| Tensor::<1>::random([n], Distribution::Uniform(lo, hi), device);
        bn.inner.gamma = Param::from_tensor(random(0.5, 1.5));
        bn.inner.running_var = RunningState::new(random(0.5, 2.0));
        bn.inner.running_mean = RunningState::new(random(-0.3, 0.3));
    }
    net
}

#[test]
fn batch_norm_is_frozen_and_the_setting_outlives_a_checkpoint() {
    let device = Device::flex().autodiff();
    let text = "conv:4:3,bn,relu,dwsep:6,gap,dense:3";
    let fq = FakeQuant {
        per_channel: true,
        weight_max: 127.0,
    };
    let net = trained_like(text, &device).with_fake_quant(Some(fq));
    let stats = |net: &Network| match &net.layers[1] {
        crate::Layer::BatchNorm(bn) => values(bn.inner.running_mean.value_sync()),
        _ => unreachable!("layer 1 is bn"),
    };
    let before = stats(&net);
    let x = Tensor::<4>::random([5, 2, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let _ = net.forward(x.clone());
    assert_eq!(
        stats(&net),
        before,
        "fake quantization froze the statistics"
    );
    let plain = net.clone().with_fake_quant(None);
    let _ = plain.forward(x);
    assert_ne!(stats(&plain), before, "a plain training step moves them");

    let reloaded = trained_like(text, &device)
        .with_fake_quant(Some(fq))
        .load_record(net.clone().into_record());
    assert_eq!(reloaded.fake_quant(), Some(fq));
    assert_eq!(
        net.valid().fake_quant(),
        Some(fq),
        "evaluation rounds as training does"
    );
}
