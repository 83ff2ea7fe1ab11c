//! The image-folder cache reader: a damaged cache is "rebuild" (`None`), never a panic, and a
//! cache it accepts is self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sepnet_data::image_folder;

fuzz_target!(|data: &[u8]| {
    // The folder fingerprint sits after the magic and the version; use the one the bytes carry
    // so that the fuzzer reaches past it.
    let print = data
        .get(12..20)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    if let Some(d) = image_folder::parse_cache(data, print, "fuzz") {
        let classes = d.classes.len();
        let image = d.image_len();
        assert_eq!(d.train.images.len(), d.train.len() * image);
        assert_eq!(d.test.images.len(), d.test.len() * image);
        assert!(d.train.labels.iter().chain(&d.test.labels).all(|&l| (l as usize) < classes));
    }
});
