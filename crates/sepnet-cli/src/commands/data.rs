//! `sepnet data`: find (or download) a dataset, validate it, and show what it holds.

use anyhow::Result;
use sepnet_data::{DatasetKind, Locator};
use sepnet_train::table::{Style, draw};

/// Arguments of `sepnet data`.
#[derive(clap::Args)]
pub struct Args {
    /// mnist, fashion-mnist, cifar10, or an image folder (ROOT/train/<class>/…, ROOT/test/<class>/…).
    dataset: String,
    /// Folder holding the files (default: $SEPNET_DATA/<dataset>, ~/.cache/sepnet/<dataset>, else download).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Never download; say which files to put where instead.
    #[arg(long)]
    offline: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Loads the dataset and prints its description.
pub fn run(args: Args) -> Result<()> {
    let kind: DatasetKind = args.dataset.parse().map_err(anyhow::Error::msg)?;
    let locator = Locator {
        data_dir: args.data_dir,
        offline: args.offline,
        progress: !args.json,
    };
    let dir = locator.locate(&kind)?;
    let d = locator.load(&kind)?;
    let classes = d.classes.len();
    let (train, test) = (d.train.class_counts(classes), d.test.class_counts(classes));
    if args.json {
        let value = serde_json::json!({
            "dataset": d.name, "location": dir, "image_shape": d.image_shape, "classes": d.classes,
            "train_images": d.train.len(), "test_images": d.test.len(),
            "train_per_class": train, "test_per_class": test,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let [h, w, c] = d.image_shape;
    println!(
        "{} from {}: {} train + {} test images of {h}×{w}×{c}",
        d.name,
        dir.display(),
        d.train.len(),
        d.test.len()
    );
    let rows = d
        .classes
        .iter()
        .enumerate()
        .map(|(i, name)| {
            vec![
                i.to_string(),
                name.clone(),
                train[i].to_string(),
                test[i].to_string(),
            ]
        })
        .collect();
    let header = ["label", "class", "train", "test"];
    print!(
        "{}",
        draw(Style::Plain, &header, &["label", "train", "test"], rows)
    );
    Ok(())
}
