//! Fixtures generated here, and every bad-input case: each must give an error naming the file
//! and the problem — never a panic, never a silently short dataset.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sepnet_data::{DataError, cifar, idx, image_folder, mnist};

/// A tar archive of `files`, built in memory.
fn tar_archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Asserts the error names `path` and contains `problem`.
fn assert_error(err: DataError, path: &Path, problem: &str) {
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "error does not name {}: {text}",
        path.display()
    );
    assert!(
        text.contains(problem),
        "error does not say `{problem}`: {text}"
    );
}

/// A small valid MNIST-like folder: 6 train and 4 test images of 4×3.
fn idx_fixture(dir: &Path, gz: bool) {
    let pack = |b: Vec<u8>| if gz { gzip(&b) } else { b };
    let suffix = if gz { ".gz" } else { "" };
    let pixels: Vec<u8> = (0..6 * 12).map(|v| v as u8).collect();
    write(
        dir,
        &format!("train-images-idx3-ubyte{suffix}"),
        &pack(idx::encode_images(6, 4, 3, &pixels)),
    );
    write(
        dir,
        &format!("train-labels-idx1-ubyte{suffix}"),
        &pack(idx::encode_labels(&[0, 1, 2, 3, 4, 9])),
    );
    write(
        dir,
        &format!("t10k-images-idx3-ubyte{suffix}"),
        &pack(idx::encode_images(4, 4, 3, &pixels[..48])),
    );
    write(
        dir,
        &format!("t10k-labels-idx1-ubyte{suffix}"),
        &pack(idx::encode_labels(&[5, 6, 7, 8])),
    );
}

#[test]
fn idx_fixtures_load_gzipped_and_raw() {
    for gz in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        idx_fixture(dir.path(), gz);
        let d = mnist::load(dir.path(), "mnist").unwrap();
        assert_eq!(d.image_shape, [4, 3, 1]);
        assert_eq!(d.train.labels, vec![0, 1, 2, 3, 4, 9]);
        assert_eq!(d.train.images.len(), 6 * 12);
        assert_eq!(d.train.images[13], 13);
        assert_eq!(d.test.len(), 4);
    }
}

#[test]
fn idx_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let labels = idx::encode_labels(&[1, 2, 3]);
    let images = idx::encode_images(3, 2, 2, &[0; 12]);

    let p = write(d, "labels-as-images", &labels);
    assert_error(idx::read_images(&p).unwrap_err(), &p, "IDX labels file");
    let p = write(d, "images-as-labels", &images);
    assert_error(idx::read_labels(&p, 10).unwrap_err(), &p, "IDX images file");
    let p = write(d, "truncated-images", &images[..images.len() - 5]);
    assert_error(idx::read_images(&p).unwrap_err(), &p, "truncated?");
    let p = write(d, "trailing-images", &[images.clone(), vec![0; 3]].concat());
    assert_error(idx::read_images(&p).unwrap_err(), &p, "holds 15 bytes");
    // A header that claims 4 billion images of 65k×65k must not size any allocation.
    let mut huge = idx::encode_images(0, 1, 1, &[]);
    huge[4..16].copy_from_slice(&[0xff; 12]);
    let p = write(d, "huge-header", &huge);
    assert_error(
        idx::read_images(&p).unwrap_err(),
        &p,
        "header says 4294967295 images",
    );
    let p = write(d, "zero-size", &idx::encode_images(0, 0, 5, &[]));
    assert_error(idx::read_images(&p).unwrap_err(), &p, "0×5");
    let p = write(d, "short", &[0, 0, 8]);
    assert_error(idx::read_images(&p).unwrap_err(), &p, "too short");
    let p = write(d, "label-range", &idx::encode_labels(&[1, 10, 3]));
    assert_error(
        idx::read_labels(&p, 10).unwrap_err(),
        &p,
        "label 10 at index 1",
    );
    let p = write(d, "short-labels", &labels[..9]);
    assert_error(
        idx::read_labels(&p, 10).unwrap_err(),
        &p,
        "header says 3 labels but the file holds 1",
    );
    let gz = gzip(&images);
    let p = write(d, "truncated.gz", &gz[..gz.len() / 2]);
    assert_error(
        idx::read_images(&p).unwrap_err(),
        &p,
        "truncated or corrupt gzip",
    );
    let mut corrupt = gz.clone();
    let n = corrupt.len();
    corrupt[n - 6] ^= 0xff; // CRC
    let p = write(d, "corrupt.gz", &corrupt);
    assert_error(
        idx::read_images(&p).unwrap_err(),
        &p,
        "truncated or corrupt gzip",
    );
}

#[test]
fn a_gzip_bomb_is_refused_after_the_bytes_its_header_promises() {
    let dir = tempfile::tempdir().unwrap();
    // A valid header for 3 images of 2×2, then 64 MiB of zeros (64 KiB compressed).
    let mut bomb = idx::encode_images(3, 2, 2, &[7; 12]);
    bomb.resize(bomb.len() + (64 << 20), 0);
    let p = write(dir.path(), "bomb.gz", &gzip(&bomb));
    assert_error(
        idx::read_images(&p).unwrap_err(),
        &p,
        "header says 3 images of 2×2 (12 bytes) but the file holds more (trailing data)",
    );
}

#[test]
fn idx_count_disagreement_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    idx_fixture(dir.path(), false);
    let p = write(
        dir.path(),
        "train-labels-idx1-ubyte",
        &idx::encode_labels(&[0, 1, 2]),
    );
    assert_error(
        mnist::load(dir.path(), "mnist").unwrap_err(),
        &p,
        "3 labels for 6 images",
    );
    write(
        dir.path(),
        "train-labels-idx1-ubyte",
        &idx::encode_labels(&[0, 1, 2, 3, 4, 5]),
    );
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    assert_error(
        mnist::load(dir.path(), "mnist").unwrap_err(),
        dir.path(),
        "missing t10k-labels-idx1-ubyte.gz",
    );
}

fn cifar_records(labels: &[u8]) -> Vec<u8> {
    labels
        .iter()
        .flat_map(|&l| std::iter::once(l).chain((0..3072).map(move |i| (i as u8).wrapping_add(l))))
        .collect()
}

const META: &[u8] = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";

#[test]
fn cifar_loose_files_and_archive() {
    let dir = tempfile::tempdir().unwrap();
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, f) in cifar::TRAIN_FILES.iter().enumerate() {
        members.push((f.to_string(), cifar_records(&[i as u8, 9])));
    }
    members.push((cifar::TEST_FILE.into(), cifar_records(&[3, 4, 5])));
    members.push((cifar::META_FILE.into(), META.to_vec()));
    for (name, bytes) in &members {
        write(dir.path(), name, bytes);
    }
    let loose = cifar::load_dir(dir.path()).unwrap();
    assert_eq!(loose.train.labels, vec![0, 9, 1, 9, 2, 9, 3, 9, 4, 9]);
    assert_eq!(loose.test.labels, vec![3, 4, 5]);
    assert_eq!(loose.classes[9], "truck");
    assert_eq!(
        loose.train.images[3072 + 5],
        14,
        "second image, red plane, pixel 5 = 5 + label 9"
    );

    let tar_members: Vec<(String, &[u8])> = members
        .iter()
        .map(|(n, b)| (format!("cifar-10-batches-bin/{n}"), b.as_slice()))
        .collect();
    let refs: Vec<(&str, &[u8])> = tar_members.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let archive = gzip(&tar_archive(&refs));
    let p = write(dir.path(), "archive/cifar-10-binary.tar.gz", &archive);
    assert_eq!(cifar::load_archive(&p).unwrap(), loose);

    let p = write(
        dir.path(),
        "archive/truncated.tar.gz",
        &gzip(&tar_archive(&refs)[..40_000]),
    );
    assert_error(cifar::load_archive(&p).unwrap_err(), &p, "truncated");
    let p = write(
        dir.path(),
        "archive/cut.tar.gz",
        &archive[..archive.len() / 3],
    );
    assert_error(
        cifar::load_archive(&p).unwrap_err(),
        &p,
        "truncated or corrupt gzip",
    );
    let p = write(
        dir.path(),
        "archive/missing.tar.gz",
        &gzip(&tar_archive(&refs[1..])),
    );
    assert_error(
        cifar::load_archive(&p).unwrap_err(),
        &p,
        "archive has no data_batch_1.bin",
    );
    let p = write(dir.path(), "archive/not-tar.tar.gz", &gzip(b"hello"));
    assert!(cifar::load_archive(&p).is_err());
}

#[test]
fn cifar_bad_records_and_meta() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "short.bin", &cifar_records(&[1, 2])[..5000]);
    assert_error(
        cifar::parse_records(&std::fs::read(&p).unwrap(), &p).unwrap_err(),
        &p,
        "not a whole number of 3073-byte",
    );
    let p = write(dir.path(), "label.bin", &cifar_records(&[1, 12]));
    assert_error(
        cifar::parse_records(&std::fs::read(&p).unwrap(), &p).unwrap_err(),
        &p,
        "record 1 has label 12",
    );
    let p = write(dir.path(), "empty.bin", &[]);
    assert!(cifar::parse_records(&[], &p).is_err());
    let p = write(dir.path(), "batches.meta.txt", b"cat\ndog\n");
    assert_error(
        cifar::parse_meta(b"cat\ndog\n", &p).unwrap_err(),
        &p,
        "expected 10 class names, found 2",
    );
}

fn png(path: &Path, w: u32, h: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([seed, x as u8 * 10, y as u8 * 20]))
        .save(path)
        .unwrap();
}

fn folder_fixture(root: &Path) {
    for (split, n) in [("train", 3), ("test", 2)] {
        for (c, class) in ["cat", "dog"].iter().enumerate() {
            for i in 0..n {
                png(
                    &root.join(split).join(class).join(format!("{i}.png")),
                    5,
                    4,
                    (c * 10 + i) as u8,
                );
            }
        }
    }
}

#[test]
fn image_folder_loads_and_caches() {
    let dir = tempfile::tempdir().unwrap();
    let (root, cache) = (dir.path().join("pets"), dir.path().join("cache"));
    folder_fixture(&root);
    let d = image_folder::load(&root, &cache).unwrap();
    assert_eq!(d.classes, vec!["cat", "dog"]);
    assert_eq!(d.image_shape, [4, 5, 3]);
    assert_eq!(d.train.labels, vec![0, 0, 0, 1, 1, 1]);
    assert_eq!(d.test.len(), 4);
    // CHW: red plane all = seed, green plane x·10, blue plane y·20.
    let first = &d.train.images[..60];
    assert!(first[..20].iter().all(|&v| v == 0));
    assert_eq!(&first[20..25], &[0, 10, 20, 30, 40]);
    assert_eq!(first[40 + 5], 20);
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        1,
        "one cache file"
    );
    assert_eq!(
        image_folder::load(&root, &cache).unwrap(),
        d,
        "the cached copy is identical"
    );
    // Changing a file invalidates the cache.
    std::thread::sleep(std::time::Duration::from_millis(20));
    png(&root.join("train/dog/0.png"), 5, 4, 99);
    let changed = image_folder::load(&root, &cache).unwrap();
    assert_eq!(changed.train.images[3 * 60], 99);
}

#[test]
fn a_damaged_image_folder_cache_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (root, cache) = (dir.path().join("pets"), dir.path().join("cache"));
    folder_fixture(&root);
    let fresh = image_folder::load(&root, &cache).unwrap();
    let file = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = std::fs::read(&file).unwrap();
    // Label bytes follow the header; pixel bytes end the file. Each damage is caught.
    let header = good.len() - 10 * 60 - 10;
    for (at, value) in [(header, 7u8), (header + 9, 200), (good.len() - 1, 1)] {
        let mut bad = good.clone();
        bad[at] = bad[at].wrapping_add(value);
        std::fs::write(&file, &bad).unwrap();
        assert_eq!(
            image_folder::load(&root, &cache).unwrap(),
            fresh,
            "byte {at}"
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            good,
            "rewritten after byte {at}"
        );
    }
    std::fs::write(&file, &good[..good.len() / 2]).unwrap();
    assert_eq!(image_folder::load(&root, &cache).unwrap(), fresh);
}

#[test]
fn image_folder_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("train")).unwrap();
    std::fs::create_dir_all(empty.join("test")).unwrap();
    assert_error(
        image_folder::load(&empty, &cache).unwrap_err(),
        &empty.join("train"),
        "no class folders",
    );

    let no_test = dir.path().join("no-test");
    png(&no_test.join("train/a/0.png"), 4, 4, 0);
    assert_error(
        image_folder::load(&no_test, &cache).unwrap_err(),
        &no_test.join("test"),
        "missing",
    );

    let empty_class = dir.path().join("empty-class");
    folder_fixture(&empty_class);
    std::fs::create_dir_all(empty_class.join("train/zebra")).unwrap();
    assert_error(
        image_folder::load(&empty_class, &cache).unwrap_err(),
        &empty_class.join("train/zebra"),
        "no .png or .jpg",
    );

    let mixed = dir.path().join("mixed");
    folder_fixture(&mixed);
    png(&mixed.join("train/dog/1.png"), 6, 4, 0);
    assert_error(
        image_folder::load(&mixed, &cache).unwrap_err(),
        &mixed.join("train/dog/1.png"),
        "image is 6×4 but",
    );

    let corrupt = dir.path().join("corrupt");
    folder_fixture(&corrupt);
    write(&corrupt, "test/cat/0.png", b"not a png at all");
    assert_error(
        image_folder::load(&corrupt, &cache).unwrap_err(),
        &corrupt.join("test/cat/0.png"),
        "cannot decode image",
    );

    let classes = dir.path().join("classes");
    folder_fixture(&classes);
    png(&classes.join("test/bird/0.png"), 5, 4, 0);
    assert_error(
        image_folder::load(&classes, &cache).unwrap_err(),
        &classes.join("test"),
        "differ from train's",
    );
}

/// A file rewritten with other pixels but the same size and modification time is decoded
/// again: the cache is keyed by the files' bytes, not their size and time.
#[test]
fn the_image_cache_follows_the_bytes_not_the_size_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let (root, cache) = (dir.path().join("pets"), dir.path().join("cache"));
    folder_fixture(&root);
    let before = image_folder::load(&root, &cache).unwrap();
    let file = root.join("train/dog/0.png");
    let (len, mtime) = {
        let meta = std::fs::metadata(&file).unwrap();
        (meta.len(), meta.modified().unwrap())
    };
    png(&file, 5, 4, 98);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), len, "same size");
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let after = image_folder::load(&root, &cache).unwrap();
    assert_eq!(after.train.images[3 * 60], 98);
    assert_ne!(after, before);
}

/// Entries an image folder cannot read are named, never skipped without a word; so are class
/// lists a classifier cannot train on.
#[test]
fn unreadable_entries_and_impossible_classes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let dangling = dir.path().join("dangling");
    folder_fixture(&dangling);
    let link = dangling.join("train/cat/9.png");
    std::os::unix::fs::symlink(dir.path().join("nowhere.png"), &link).unwrap();
    assert_error(
        image_folder::load(&dangling, &cache).unwrap_err(),
        &link,
        "a link to nothing readable",
    );
    let fifo = dir.path().join("fifo");
    folder_fixture(&fifo);
    let pipe = fifo.join("test/dog/9.png");
    let made = std::process::Command::new("mkfifo").arg(&pipe).status();
    assert!(made.unwrap().success());
    assert_error(
        image_folder::load(&fifo, &cache).unwrap_err(),
        &pipe,
        "not a regular file",
    );
    let one = dir.path().join("one");
    for split in ["train", "test"] {
        png(&one.join(split).join("cat/0.png"), 5, 4, 1);
    }
    let loaded = image_folder::load(&one, &cache).unwrap();
    let err = loaded.check_classes().unwrap_err();
    assert!(err.contains("at least 2"), "{err}");
}
