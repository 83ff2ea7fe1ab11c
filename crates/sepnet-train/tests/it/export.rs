//! Exported ONNX models run by tract (an ONNX runtime sepnet did not write) give sepnet's own
//! logits on real test images: networks built and trained here, covering every layer kind.

use sepnet_train::export::{Format, Sample};
use sepnet_train::{Run, Weights, train};
use tract_onnx::prelude::*;

use crate::common::{FASHION, config, quiet, turn};

/// Every layer kind: full, depthwise (multiplier 2, bias, dilation), separable, MobileNet v1 and
/// v2 blocks, BatchNorm, ReLU6, max and average pooling with `same` padding, dropout, and
/// TensorFlow's asymmetric `same` padding at stride 2. Not the literal models, whose kernels are
/// larger than their input: tract 0.22.5 corrupts its heap on them (its im2col underflows);
/// ONNX Runtime runs them to sepnet's logits (`reference/check_onnx.py`, docs/export.md).
/// The third: every smooth activation, fused into each convolution kind and as layers, and
/// squeeze-and-excitation with either gate.
const SPECS: [&str; 3] = [
    "conv:8:3:relu,maxpool:2,sep:16:3:relu,pool,flatten,dense:10",
    "conv:8:3:s=2:nobias,bn,relu6,dw:3:m=2:d=2:bias:relu,dwsep:16:s=2,ir:16:e=3,ir:24:s=2,avgpool:2:s=1:same,maxpool:3:s=2:same,gap,dropout:0.2,dense:10",
    "conv:8:3:silu,bn,hardswish,dw:3:bias:tanh,sep:16:3:gelu,dwsep:16:s=2:hardswish,se:0.25:gate=hardsigmoid,conv:16:1:sigmoid,hardsigmoid,se:4:silu,bneck:16:48:5:se=0.25:hardswish,mbconv:16:3:e=2:s=2:se=0.25,mbconv:16:5:e=1:se=0.25,gap,dense:10",
];

/// tract's logits for the sample's images.
fn tract_logits(onnx: &[u8], sample: &Sample) -> Vec<f32> {
    let [n, c, h, w] = sample.shape;
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(onnx))
        .unwrap()
        .with_input_fact(0, f32::fact([n, c, h, w]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let images =
        tract_ndarray::Array4::from_shape_vec((n, c, h, w), sample.images.clone()).unwrap();
    let outputs = model.run(tvec!(Tensor::from(images).into())).unwrap();
    outputs[0]
        .to_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

/// How tract's logits compare with sepnet's in `sample`: the largest difference, the largest
/// logit's size, and on how many images both pick the same class.
fn agreement(sample: &Sample, theirs: &[f32]) -> (f32, f32, usize) {
    let ours = &sample.logits;
    let scale = ours.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = ours
        .iter()
        .zip(theirs)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let same = ours
        .chunks(sample.classes)
        .zip(theirs.chunks(sample.classes))
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    (worst, scale, same)
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn tract_runs_the_exported_models_to_sepnets_logits() {
    let _turn = turn();
    for spec in SPECS {
        let out = tempfile::tempdir().unwrap();
        let mut c = config(spec, 1, 30);
        c.validation = sepnet_train::Validation::Images(500);
        train(&c, out.path(), &mut quiet()).unwrap();
        let run = Run::open(out.path()).unwrap();
        let data = run.load_dataset(None, Some(FASHION.into()), false).unwrap();
        let sample = run.sample(&data, 64, Weights::Best).unwrap();
        let onnx = run.export(Format::Onnx, Weights::Best).unwrap();
        let (worst, scale, same) = agreement(&sample, &tract_logits(&onnx, &sample));
        assert!(
            worst <= 1e-4 * scale,
            "{spec}: max |tract − sepnet| {worst} at scale {scale}"
        );
        assert_eq!(
            same,
            64,
            "{spec}: another top-1 class on {} images",
            64 - same
        );
    }
}

/// The int8 QDQ model with one scale per tensor (tract 0.22 reads only the first scale of a
/// per-channel one) runs in tract to sepnet's int8 logits: every layer kind with an int8 form.
#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn tract_runs_the_int8_model_to_sepnets_int8_logits() {
    use sepnet_quant::Granularity;
    use sepnet_train::quantize::QuantizeOptions;
    let _turn = turn();
    let out = tempfile::tempdir().unwrap();
    let mut c = config(SPECS[1], 1, 30);
    c.validation = sepnet_train::Validation::Images(500);
    train(&c, out.path(), &mut quiet()).unwrap();
    let run = Run::open(out.path()).unwrap();
    let data = run.load_dataset(None, Some(FASHION.into()), false).unwrap();
    let options = QuantizeOptions {
        granularity: Granularity::PerTensor,
        calibration: 256,
        ..Default::default()
    };
    let quantized = run.quantize(&data, &options).unwrap();
    let sample = run.int8_sample(&quantized, &data, 64);
    let (worst, scale, same) = agreement(&sample, &tract_logits(&quantized.onnx, &sample));
    eprintln!("int8: max |tract − sepnet| {worst} at scale {scale}; same top-1 {same}/64");
    assert!(
        worst <= 0.05 * scale,
        "max |tract − sepnet| {worst} at scale {scale}"
    );
    assert!(same >= 63, "same top-1 class on {same} of 64 images");
}
