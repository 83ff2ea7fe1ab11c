//! `sepnet predict`: top-k classes with probabilities for image files (or every image in a
//! folder). The work is the library's (`sepnet_train::classify`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use sepnet_train::{Run, Weights};

/// Which weights of a run to use (`best` by default in eval, predict and export).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum WeightsArg {
    /// After the last epoch.
    Last,
    /// The epoch with the best validation accuracy.
    Best,
}

impl std::fmt::Display for WeightsArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WeightsArg::Last => "last",
            WeightsArg::Best => "best",
        })
    }
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
                .filter(|p| sepnet_data::image_folder::is_image(p))
                .collect();
            if let Some(odd) = inside.iter().find(|p| !p.is_file()) {
                bail!(
                    "{}: not a readable image file (a folder, a FIFO or a link to nothing)",
                    odd.display()
                );
            }
            if inside.is_empty() {
                bail!("{}: the folder holds no .png or .jpg image", path.display());
            }
            inside.sort();
            files.extend(inside);
        } else if path.is_file() {
            files.push(path.clone());
        } else if std::fs::symlink_metadata(path).is_ok() {
            let what = if std::fs::metadata(path).is_err() {
                "a link to nothing"
            } else {
                "not a regular file (a FIFO, device or socket)"
            };
            bail!(
                "{}: {what}; predict reads PNG or JPEG files",
                path.display()
            );
        } else {
            bail!("{}: no such file", path.display());
        }
    }
    Ok(files)
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
    let classifier = run.classifier(&device, args.weights.into())?;
    let predictions = classifier.classify_files(&files, args.top as usize)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&predictions)?);
        return Ok(());
    }
    eprintln!("{}: {} weights", args.checkpoint.display(), args.weights);
    let [h, w, _] = run.dataset.image_shape;
    for p in &predictions {
        if let Some([pw, ph]) = p.resized_from {
            eprintln!(
                "{}: {pw}×{ph} resized to the model's {w}×{h}",
                p.image.display()
            );
        }
        let shown: Vec<String> = p
            .top
            .iter()
            .map(|r| format!("{} {:.1}%", r.class, 100.0 * r.probability))
            .collect();
        println!("{}: {}", p.image.display(), shown.join(", "));
    }
    Ok(())
}
