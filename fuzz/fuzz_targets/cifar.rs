//! The CIFAR-10 readers: loose record files, the class-name file and the `.tar.gz` archive.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sepnet_data::cifar;

fuzz_target!(|data: &[u8]| {
    let name = Path::new("fuzz.bin");
    if let Ok(split) = cifar::parse_records(data, name) {
        assert_eq!(split.images.len(), split.len() * 3072);
        assert!(split.labels.iter().all(|&l| l < 10));
    }
    if let Ok(classes) = cifar::parse_meta(data, name) {
        assert_eq!(classes.len(), 10);
    }
    if let Ok(dataset) = cifar::archive_from_bytes(data, name) {
        assert_eq!(dataset.train.images.len(), dataset.train.len() * 3072);
    }
});
