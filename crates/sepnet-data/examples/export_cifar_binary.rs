//! Writes a 32×32×3, 10-class image folder in the CIFAR-10 binary format (`data_batch_1..5.bin`,
//! `test_batch.bin`, `batches.meta.txt`), e.g. to move the decoded JPEG copy of CIFAR-10 to a
//! machine that reads it with `--dataset cifar10 --data-dir DIR`.
//!
//! `cargo run --release -p sepnet-data --example export_cifar_binary -- IMAGE_FOLDER OUT_DIR`

use std::path::Path;

use sepnet_data::{cache_root, cifar, image_folder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [folder, out] = args.as_slice() else {
        return Err("usage: export_cifar_binary IMAGE_FOLDER OUT_DIR".into());
    };
    let d = image_folder::load(Path::new(folder), &cache_root().join("image-folders"))?;
    if d.image_shape != [32, 32, 3] || d.classes.len() != 10 {
        return Err(format!(
            "{folder}: CIFAR binary needs 32×32×3 images in 10 classes, found {:?} in {}",
            d.image_shape,
            d.classes.len()
        )
        .into());
    }
    let out = Path::new(out);
    std::fs::create_dir_all(out)?;
    let records = |split: &sepnet_data::Split, range: std::ops::Range<usize>| -> Vec<u8> {
        range
            .flat_map(|i| {
                std::iter::once(split.labels[i])
                    .chain(split.images[i * 3072..(i + 1) * 3072].iter().copied())
            })
            .collect()
    };
    let per_batch = d.train.len().div_ceil(5);
    for (b, name) in cifar::TRAIN_FILES.iter().enumerate() {
        let range = b * per_batch..((b + 1) * per_batch).min(d.train.len());
        std::fs::write(out.join(name), records(&d.train, range))?;
    }
    std::fs::write(
        out.join(cifar::TEST_FILE),
        records(&d.test, 0..d.test.len()),
    )?;
    std::fs::write(out.join(cifar::META_FILE), d.classes.join("\n") + "\n")?;
    println!(
        "wrote {} train and {} test records to {}",
        d.train.len(),
        d.test.len(),
        out.display()
    );
    Ok(())
}
