//! The real files: `../shared/datasets` beside the project, and Debian's Fashion-MNIST. A
//! test whose files are absent is ignored, and says why (see `crates/testing/data_cfg.rs`).

use std::path::{Path, PathBuf};

use sepnet_data::{DatasetKind, Locator, cifar, image_folder, mnist};

/// A folder of the shared datasets beside the project root.
fn shared(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/datasets")
        .join(sub)
}

#[test]
#[cfg_attr(
    not(has_shared_mnist),
    ignore = "needs ../shared/datasets/mnist beside the project"
)]
fn real_mnist_label_counts() {
    let dir = shared("mnist");
    let d = mnist::load(&dir, "mnist").unwrap();
    assert_eq!(d.image_shape, [28, 28, 1]);
    assert_eq!(
        d.train.class_counts(10),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        d.test.class_counts(10),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(d.train.images.len(), 60_000 * 784);
    // Through the locator, with --data-dir.
    let located = Locator {
        data_dir: Some(dir),
        offline: true,
        progress: false,
    }
    .load(&DatasetKind::Mnist)
    .unwrap();
    assert_eq!(located.test.labels, d.test.labels);
}

#[test]
#[cfg_attr(
    not(has_shared_cifar_partial),
    ignore = "needs ../shared/datasets/cifar-10-partial beside the project"
)]
fn real_cifar_partial_records() {
    let dir = shared("cifar-10-partial");
    let read = |name: &str| {
        let path = dir.join(name);
        cifar::parse_records(&std::fs::read(&path).unwrap(), &path).unwrap()
    };
    let train = read("data_batch_1_first4000.bin");
    assert_eq!(train.len(), 4000);
    let test = read("test_batch_first1000.bin");
    assert_eq!(
        test.class_counts(10),
        vec![103, 89, 100, 103, 90, 86, 112, 102, 106, 109]
    );
    let meta_path = dir.join("batches.meta.txt");
    let classes = cifar::parse_meta(&std::fs::read(&meta_path).unwrap(), &meta_path).unwrap();
    assert_eq!(classes[0], "airplane");
    assert_eq!(classes[9], "truck");
}

#[test]
#[cfg_attr(
    not(has_shared_cifar_jpeg),
    ignore = "needs ../shared/datasets/cifar-10-jpeg beside the project"
)]
fn real_cifar_jpeg_image_folder() {
    let dir = shared("cifar-10-jpeg");
    let cache = tempfile::tempdir().unwrap();
    let d = image_folder::load(&dir, cache.path()).unwrap();
    assert_eq!(d.image_shape, [32, 32, 3]);
    assert_eq!(d.classes.len(), 10);
    assert_eq!(d.classes[0], "airplane");
    assert_eq!(d.train.class_counts(10), vec![5000; 10]);
    assert_eq!(d.test.class_counts(10), vec![1000; 10]);
    let start = std::time::Instant::now();
    let cached = image_folder::load(&dir, cache.path()).unwrap();
    eprintln!("cifar-10-jpeg from cache in {:?}", start.elapsed());
    assert_eq!(cached.test.images, d.test.images);
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn real_fashion_mnist_from_debian() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    let d = mnist::load(dir, "fashion-mnist").unwrap();
    assert_eq!(d.train.class_counts(10), vec![6000; 10]);
    assert_eq!(d.test.class_counts(10), vec![1000; 10]);
    assert_eq!(d.classes[9], "Ankle boot");
}
