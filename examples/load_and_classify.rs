//! Opens a finished run and classifies image files with it — what `sepnet predict` does, from
//! a Rust program:
//!
//! ```sh
//! sepnet train --model mnist-hybrid --dataset mnist --epochs 1 --out runs/hybrid
//! cargo run --release -p sepnet-examples --example load_and_classify -- runs/hybrid digit.png
//! ```

use std::path::PathBuf;

use burn::tensor::Device;
use sepnet_train::{Run, Weights};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let run_dir: PathBuf = args
        .next()
        .ok_or("usage: load_and_classify RUN IMAGE...")?
        .into();
    let images: Vec<PathBuf> = args.map(PathBuf::from).collect();

    // One call: the run's network (the best validation epoch), its classes and preprocessing.
    let run = Run::open(&run_dir)?;
    let classifier = run.classifier(&Device::flex(), Weights::Best)?;
    println!(
        "{}: {} classes",
        run_dir.display(),
        classifier.classes().len()
    );

    for prediction in classifier.classify_files(&images, 3)? {
        let best = &prediction.top[0];
        println!(
            "{}: {} ({:.1}%)",
            prediction.image.display(),
            best.class,
            100.0 * best.probability
        );
    }
    Ok(())
}
