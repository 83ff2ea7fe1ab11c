//! `sepnet predict`: top-k classes with probabilities for image files (or every image in a
//! folder), in batches.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::activation::softmax;
use sepnet_data::{BatchConfig, Batches, Split};
use sepnet_train::{Run, Weights};

/// Images per forward pass.
const BATCH: usize = 256;

/// Which weights of a run to use.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum WeightsArg {
    /// After the last epoch.
    Last,
    /// The epoch with the best validation accuracy.
    Best,
}

impl From<WeightsArg> for Weights {
    fn from(w: WeightsArg) -> Weights {
        match w {
            WeightsArg::Last => Weights::Last,
            WeightsArg::Best => Weights::Best,
        }
    }
}

/// Arguments of `sepnet predict`.
#[derive(clap::Args)]
pub struct Args {
    /// Run directory written by `sepnet train`.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// Image files (PNG or JPEG), or folders of them; resized to the model's input if needed
    /// (and said so).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    top: u64,
    /// Which weights: best (the best validation epoch) or last.
    #[arg(long, value_enum, default_value = "best")]
    weights: WeightsArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Every image file named, folders expanded (sorted, not recursive).
fn image_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}: cannot list the folder", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && sepnet_data::image_folder::is_image(p))
                .collect();
            if inside.is_empty() {
                bail!("{}: the folder holds no .png or .jpg image", path.display());
            }
            inside.sort();
            files.extend(inside);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{}: no such file", path.display());
        }
    }
    Ok(files)
}

/// Decodes one image into CHW bytes of `[h, w, c]`; says on stderr when it resizes.
fn load_image(path: &Path, [h, w, c]: [usize; 3], quiet: bool) -> Result<Vec<u8>> {
    let image = image::open(path).with_context(|| {
        format!(
            "{}: cannot decode the image (PNG or JPEG expected)",
            path.display()
        )
    })?;
    let image = if (image.height() as usize, image.width() as usize) != (h, w) {
        if !quiet {
            eprintln!(
                "{}: {}×{} resized to the model's {w}×{h}",
                path.display(),
                image.width(),
                image.height()
            );
        }
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
    let run = Run::open(&args.checkpoint)?;
    let files = image_files(&args.images)?;
    let device = run
        .config
        .config
        .backend
        .device()
        .map_err(anyhow::Error::msg)?;
    let model = run.network(&device, args.weights.into())?;
    let info = &run.dataset;
    let mut results = Vec::new();
    for chunk in files.chunks(BATCH) {
        let mut split = Split::default();
        for path in chunk {
            split
                .images
                .extend(load_image(path, info.image_shape, args.json)?);
            split.labels.push(0);
        }
        let config = BatchConfig::eval(chunk.len());
        let batch = Batches::new(&split, info.image_shape, &info.normalization, config, 0, 0)
            .next()
            .context("no images")?;
        let (images, _) = batch.into_tensors(&device);
        let probabilities: Vec<f32> = softmax(model.forward(images), 1)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for (path, probs) in chunk.iter().zip(probabilities.chunks(info.classes.len())) {
            let mut ranked: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let top: Vec<(String, f32)> = ranked
                .iter()
                .take(args.top as usize)
                .map(|&(i, p)| (info.classes[i].clone(), p))
                .collect();
            if !args.json {
                let shown: Vec<String> = top
                    .iter()
                    .map(|(c, p)| format!("{c} {:.1}%", 100.0 * p))
                    .collect();
                println!("{}: {}", path.display(), shown.join(", "));
            }
            let top: Vec<_> = top
                .iter()
                .map(|(c, p)| serde_json::json!({"class": c, "probability": p}))
                .collect();
            results.push(serde_json::json!({"image": path, "top": top}));
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(())
}
