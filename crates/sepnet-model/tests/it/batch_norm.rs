//! BatchNorm in training mode on the CPU (sepnet's fused kernel) against the textbook
//! formulas in f64: the output, the gradients for the input, γ and β through burn's autodiff,
//! and the running statistics after one step (momentum 0.1, biased variance, as burn).

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use sepnet_model::layers::BatchNormConfig;

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 250.0 - 1.5
        })
        .collect()
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn assert_close(ours: &[f32], expected: &[f64], what: &str) {
    assert_eq!(ours.len(), expected.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
        assert!(
            (*a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "{what} {i}: {a} vs {b}"
        );
    }
}

#[test]
fn training_step_matches_the_definition() {
    let device = Device::flex().autodiff();
    let [n, c, h, w] = [3, 4, 5, 6];
    let mut bn = BatchNormConfig::new(c).init(&device);
    let gamma = values(c, 1);
    let beta = values(c, 2);
    bn.inner.gamma = Param::from_tensor(Tensor::from_data(
        TensorData::new(gamma.clone(), [c]),
        &device,
    ));
    bn.inner.beta = Param::from_tensor(Tensor::from_data(
        TensorData::new(beta.clone(), [c]),
        &device,
    ));
    let x = values(n * c * h * w, 3);
    let dy = values(x.len(), 4);
    let xt =
        Tensor::<4>::from_data(TensorData::new(x.clone(), [n, c, h, w]), &device).require_grad();
    let y = bn.forward(xt.clone());
    let dyt = Tensor::<4>::from_data(TensorData::new(dy.clone(), [n, c, h, w]), &device);
    let grads = (y.clone() * dyt).sum().backward();

    let m = (n * h * w) as f64;
    let eps = 1e-5;
    let (mut out, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    let (mut dgamma, mut dbeta, mut running_mean, mut running_var) =
        (vec![], vec![], vec![], vec![]);
    for ch in 0..c {
        let idx: Vec<usize> = (0..n)
            .flat_map(|b| (0..h * w).map(move |p| (b * c + ch) * h * w + p))
            .collect();
        let mean = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / m;
        let var = idx
            .iter()
            .map(|&i| (x[i] as f64 - mean).powi(2))
            .sum::<f64>()
            / m;
        let inv = 1.0 / (var + eps).sqrt();
        let sum_dy: f64 = idx.iter().map(|&i| dy[i] as f64).sum();
        let sum_dy_xhat: f64 = idx
            .iter()
            .map(|&i| dy[i] as f64 * (x[i] as f64 - mean) * inv)
            .sum();
        for &i in &idx {
            let xhat = (x[i] as f64 - mean) * inv;
            out[i] = gamma[ch] as f64 * xhat + beta[ch] as f64;
            dx[i] = gamma[ch] as f64 * inv / m * (m * dy[i] as f64 - sum_dy - xhat * sum_dy_xhat);
        }
        dgamma.push(sum_dy_xhat);
        dbeta.push(sum_dy);
        running_mean.push(0.9 * 0.0 + 0.1 * mean);
        running_var.push(0.9 * 1.0 + 0.1 * var);
    }
    assert_close(&to_vec(y), &out, "output");
    assert_close(&to_vec(xt.grad(&grads).unwrap()), &dx, "dx");
    assert_close(
        &to_vec(bn.inner.gamma.val().grad(&grads).unwrap()),
        &dgamma,
        "dgamma",
    );
    assert_close(
        &to_vec(bn.inner.beta.val().grad(&grads).unwrap()),
        &dbeta,
        "dbeta",
    );
    assert_close(
        &to_vec(bn.inner.running_mean.value_sync()),
        &running_mean,
        "running mean",
    );
    assert_close(
        &to_vec(bn.inner.running_var.value_sync()),
        &running_var,
        "running variance",
    );
}
