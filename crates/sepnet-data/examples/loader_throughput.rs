//! Images/s of the batch loader alone (batches of 128, shuffled), with and without
//! augmentation, on MNIST and CIFAR-10.
//!
//! `cargo run --release -p sepnet-data --example loader_throughput -- ../shared/datasets/mnist ../shared/datasets/cifar-10-jpeg`

use std::path::Path;
use std::time::Instant;

use sepnet_data::{
    BatchConfig, Batches, Dataset, InputScaling, Normalization, image_folder, mnist,
};

fn measure(dataset: &Dataset, augment: bool) -> f64 {
    let norm = Normalization::for_dataset(InputScaling::Standardize, dataset);
    let config = BatchConfig {
        batch_size: 128,
        shuffle: true,
        drop_last: false,
        augment,
    };
    let mut rates = Vec::new();
    for epoch in 0..3 {
        let start = Instant::now();
        let mut images = 0;
        let mut checksum = 0f32;
        for batch in Batches::new(&dataset.train, dataset.image_shape, &norm, config, 1, epoch) {
            images += batch.labels.len();
            checksum += batch.images[0];
        }
        assert!(checksum.is_finite());
        rates.push(images as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[1] // median of 3 epochs
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mnist_dir = args
        .first()
        .map_or("../shared/datasets/mnist", String::as_str);
    let cifar_dir = args
        .get(1)
        .map_or("../shared/datasets/cifar-10-jpeg", String::as_str);
    let mut datasets = vec![mnist::load(Path::new(mnist_dir), "mnist").expect("MNIST")];
    let cache = sepnet_data::cache_root().join("image-folders");
    let mut cifar =
        image_folder::load(Path::new(cifar_dir), &cache).expect("CIFAR-10 image folder");
    cifar.name = "cifar10".into();
    datasets.push(cifar);
    println!("| dataset | images | plain (img/s) | augmented (img/s) |");
    println!("|---|---:|---:|---:|");
    for d in &datasets {
        println!(
            "| {} | {} | {:.0} | {:.0} |",
            d.name,
            d.train.len(),
            measure(d, false),
            measure(d, true)
        );
    }
}
