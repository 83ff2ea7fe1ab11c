//! `sepnet predict`: top-k classes with probabilities for image files.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::activation::softmax;
use sepnet_data::{BatchConfig, Batches, Split};
use sepnet_model::{Backend, ModelOptions, Network, resolve_model};
use sepnet_train::{DatasetInfo, TrainConfig, checkpoint, read_json};

/// Arguments of `sepnet predict`.
#[derive(clap::Args)]
pub struct Args {
    /// Run directory written by `sepnet train`.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// Image files (PNG or JPEG); resized to the model's input if needed.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn load_image(path: &PathBuf, [h, w, c]: [usize; 3]) -> Result<Vec<u8>> {
    let image =
        image::open(path).with_context(|| format!("{}: cannot decode image", path.display()))?;
    let image = if (image.height() as usize, image.width() as usize) != (h, w) {
        image.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle)
    } else {
        image
    };
    Ok(if c == 1 {
        image.to_luma8().into_raw()
    } else {
        let rgb = image.to_rgb8().into_raw();
        (0..3)
            .flat_map(|ch| rgb.iter().skip(ch).step_by(3).copied().collect::<Vec<_>>())
            .collect()
    })
}

/// Classifies each image.
pub fn run(args: Args) -> Result<()> {
    let dir = &args.checkpoint;
    let config: TrainConfig = read_json(&dir.join("config.json"))
        .with_context(|| format!("{} is not a sepnet run directory", dir.display()))?;
    let info: DatasetInfo = read_json(&dir.join("dataset.json"))?;
    let state = checkpoint::load_state(dir)?;
    let options = ModelOptions {
        alpha: config.alpha,
        classes: Some(info.classes.len()),
        input: Some(info.image_shape),
        ..Default::default()
    };
    let spec = resolve_model(&config.model, &options)?;
    let backend: Backend = config.backend.parse().map_err(anyhow::Error::msg)?;
    let device = backend.device().map_err(anyhow::Error::msg)?;
    let model = checkpoint::load_model(
        dir,
        &state,
        Network::new(&spec, &device).map_err(|e| anyhow::anyhow!(e.message))?,
    )?;
    if args.top == 0 {
        bail!("--top must be at least 1");
    }
    let mut split = Split::default();
    for path in &args.images {
        split.images.extend(load_image(path, info.image_shape)?);
        split.labels.push(0);
    }
    let batch = Batches::new(
        &split,
        info.image_shape,
        &info.normalization,
        BatchConfig::eval(split.len()),
        0,
        0,
    )
    .next()
    .context("no images")?;
    let (images, _) = batch.into_tensors(&device);
    let probabilities: Vec<f32> = softmax(model.forward(images), 1)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let classes = info.classes.len();
    let mut results = Vec::new();
    for (path, probs) in args.images.iter().zip(probabilities.chunks(classes)) {
        let mut ranked: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<(String, f32)> = ranked
            .iter()
            .take(args.top)
            .map(|&(i, p)| (info.classes[i].clone(), p))
            .collect();
        if !args.json {
            let shown: Vec<String> = top
                .iter()
                .map(|(c, p)| format!("{c} {:.1}%", 100.0 * p))
                .collect();
            println!("{}: {}", path.display(), shown.join(", "));
        }
        results.push(serde_json::json!({"image": path, "top": top.iter().map(|(c, p)| serde_json::json!({"class": c, "probability": p})).collect::<Vec<_>>()}));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(())
}
