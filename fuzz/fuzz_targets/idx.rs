//! The IDX reader (MNIST / Fashion-MNIST), gzip'd or raw: any bytes give a dataset whose sizes
//! agree with its header, or an error — never a panic, an abort or a runaway allocation.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sepnet_data::idx;

fuzz_target!(|data: &[u8]| {
    let name = Path::new("fuzz.idx");
    if let Ok((count, rows, cols, pixels)) = idx::images_from_bytes(data, name) {
        assert_eq!(pixels.len(), count * rows * cols);
    }
    if let Ok(labels) = idx::labels_from_bytes(data, name, 10) {
        assert!(labels.iter().all(|&l| l < 10));
    }
});
