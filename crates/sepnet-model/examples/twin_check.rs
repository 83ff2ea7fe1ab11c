//! Writes MobileNet v2 inverted residual blocks' weights, a random input, and sepnet's forward
//! output and gradients (training mode) as JSON, for `reference/torch_models.py twin-check`
//! to load into the PyTorch twin and compare:
//!
//! ```sh
//! cargo run --release -p sepnet-model --example twin_check > /tmp/twin.json
//! python3 reference/torch_models.py twin-check /tmp/twin.json
//! ```

use burn::tensor::{Device, Distribution, Tensor};
use sepnet_model::kinds::InvertedResidual;
use sepnet_model::spec::NetworkSpec;
use sepnet_model::{Layer, Network};
use serde_json::{Value, json};

fn values<const D: usize>(t: Tensor<D>) -> Value {
    let shape = t.dims().to_vec();
    let data = t.into_data().try_to_vec::<f32>().expect("f32 tensor");
    json!({"shape": shape, "data": data})
}

/// The block's convolution weights and BatchNorm γ, β in the order the twin lists them.
fn parameters(block: &InvertedResidual) -> (Vec<Tensor<4>>, Vec<[Tensor<1>; 2]>) {
    let mut convs = Vec::new();
    let mut norms = Vec::new();
    if let Some((conv, bn)) = &block.expand {
        convs.push(conv.weight.val());
        norms.push([bn.inner.gamma.val(), bn.inner.beta.val()]);
    }
    convs.push(block.conv_dw.weight.val());
    norms.push([block.bn_dw.inner.gamma.val(), block.bn_dw.inner.beta.val()]);
    convs.push(block.project.weight.val());
    norms.push([
        block.bn_project.inner.gamma.val(),
        block.bn_project.inner.beta.val(),
    ]);
    (convs, norms)
}

fn check(text: &str, input: [usize; 4], device: &Device) -> Value {
    let [n, c, h, w] = input;
    let spec = NetworkSpec::parse(&format!("{text},gap,dense:2"), [h, w, c]).expect("valid spec");
    let net = Network::new(&spec, device).expect("builds");
    let Layer::InvertedResidual(block) = &net.layers[0] else {
        unreachable!("ir first")
    };
    let x =
        Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), device).require_grad();
    let y = block.forward(x.clone());
    let g = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), device);
    let grads = (y.clone() * g.clone()).sum().backward();
    let (convs, norms) = parameters(block);
    let grad = |t: &Tensor<4>| values(t.grad(&grads).expect("a gradient"));
    json!({
        "layer": text,
        "input_hwc": [h, w, c],
        "x": values(x.clone().detach()),
        "g": values(g),
        "y": values(y.detach()),
        "dx": grad(&x),
        "convs": convs.iter().map(|t| json!({"w": values(t.clone().detach()), "dw": grad(t)})).collect::<Vec<_>>(),
        "norms": norms.iter().map(|[gamma, beta]| json!({"gamma": values(gamma.clone().detach()), "beta": values(beta.clone().detach())})).collect::<Vec<_>>(),
    })
}

fn main() {
    let device = Device::flex().autodiff();
    device.seed(42);
    let cases = [
        ("ir:8:e=3", [2, 8, 7, 7]),
        ("ir:16:s=2", [2, 8, 7, 7]),
        ("ir:8:e=1", [3, 8, 6, 6]),
    ];
    let out: Vec<Value> = cases
        .iter()
        .map(|(text, shape)| check(text, *shape, &device))
        .collect();
    println!("{}", serde_json::to_string(&out).expect("json"));
}
