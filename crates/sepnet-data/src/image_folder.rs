//! Image folders: `ROOT/train/<class>/*.{png,jpg}` and `ROOT/test/<class>/*` (torchvision's
//! ImageFolder / Keras's image_dataset_from_directory layout). Images are decoded once and
//! cached in a compact binary file, keyed by a fingerprint of every file's path, size and
//! modification time, so the next run starts in well under a second.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::{ColorType, DynamicImage};

use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result};

const CACHE_MAGIC: &[u8; 8] = b"SEPNETIF";
const CACHE_VERSION: u32 = 2;

/// The image files of one split: `(class index, path)`, sorted.
struct Listing {
    classes: Vec<String>,
    files: Vec<(u8, PathBuf)>,
}

/// True for the file extensions sepnet decodes (`.png`, `.jpg`, `.jpeg`, any case).
pub fn is_image(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    )
}

fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    Ok(entries)
}

fn list_split(dir: &Path) -> Result<Listing> {
    if !dir.is_dir() {
        return Err(DataError::invalid(
            dir,
            "missing: an image folder needs train/<class>/ and test/<class>/ sub-folders",
        ));
    }
    let class_dirs: Vec<PathBuf> = sorted_dir(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if class_dirs.is_empty() {
        return Err(DataError::invalid(dir, "no class folders in it"));
    }
    if class_dirs.len() > 256 {
        return Err(DataError::invalid(
            dir,
            format!(
                "{} class folders; at most 256 are supported",
                class_dirs.len()
            ),
        ));
    }
    let mut classes = Vec::new();
    let mut files = Vec::new();
    for (label, class_dir) in class_dirs.iter().enumerate() {
        classes.push(
            class_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        let mut images = Vec::new();
        for path in sorted_dir(class_dir)? {
            check_readable(&path)?;
            if path.is_file() && is_image(&path) {
                images.push(path);
            }
        }
        if images.is_empty() {
            return Err(DataError::invalid(
                class_dir,
                "class folder holds no .png or .jpg image",
            ));
        }
        files.extend(images.into_iter().map(|p| (label as u8, p)));
    }
    Ok(Listing { classes, files })
}

/// Refuses an entry of a class folder that cannot be read as a file: a dangling link, a FIFO,
/// a device or a socket (a folder inside a class folder is not an image and is skipped).
fn check_readable(path: &Path) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if std::fs::symlink_metadata(path).is_ok() => {
            return Err(DataError::invalid(
                path,
                format!("a link to nothing readable ({e}); remove it or fix it"),
            ));
        }
        Err(e) => return Err(DataError::io(path, e)),
    };
    if meta.is_file() || meta.is_dir() {
        return Ok(());
    }
    Err(DataError::invalid(
        path,
        "not a regular file (a FIFO, device or socket); an image folder holds image files only",
    ))
}

/// MD5 over every file's relative path, label and content: the cache is used only for the
/// very bytes it was decoded from (a size and a modification time can stay the same while the
/// pixels change).
fn fingerprint(root: &Path, listings: &[&Listing]) -> Result<u64> {
    use md5::{Digest, Md5};
    let mut hash = Md5::new();
    for listing in listings {
        for (label, path) in &listing.files {
            let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
            let name = path.strip_prefix(root).unwrap_or(path).to_string_lossy();
            hash.update((name.len() as u64).to_le_bytes());
            hash.update(name.as_bytes());
            hash.update([*label]);
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(&bytes);
        }
    }
    let digest = hash.finalize();
    Ok(u64::from_le_bytes(
        digest[..8].try_into().expect("16 bytes"),
    ))
}

fn decode(path: &Path) -> Result<DynamicImage> {
    image::open(path).map_err(|e| DataError::invalid(path, format!("cannot decode image ({e})")))
}

fn is_gray(color: ColorType) -> bool {
    matches!(
        color,
        ColorType::L8 | ColorType::La8 | ColorType::L16 | ColorType::La16
    )
}

/// Decodes every file on all cores; returns images in the listing's order.
fn decode_all(files: &[(u8, PathBuf)]) -> Result<Vec<DynamicImage>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let chunk = files.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(_, p)| decode(p))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for handle in handles {
            out.extend(handle.join().expect("decoder thread panicked")?);
        }
        Ok(out)
    })
}

/// Converts decoded images into one CHW buffer, checking every size against the first.
fn to_split(
    files: &[(u8, PathBuf)],
    images: Vec<DynamicImage>,
    shape: [usize; 3],
    first: &Path,
) -> Result<Split> {
    let [h, w, c] = shape;
    let mut split = Split {
        images: Vec::with_capacity(files.len() * h * w * c),
        labels: Vec::with_capacity(files.len()),
    };
    for ((label, path), image) in files.iter().zip(images) {
        if (image.height() as usize, image.width() as usize) != (h, w) {
            return Err(DataError::invalid(
                path,
                format!(
                    "image is {}×{} but {} is {h}×{w}; all images of a dataset must share one size",
                    image.width(),
                    image.height(),
                    first.display()
                ),
            ));
        }
        if c == 1 {
            split.images.extend_from_slice(image.to_luma8().as_raw());
        } else {
            let rgb = image.to_rgb8();
            let raw = rgb.as_raw();
            for channel in 0..3 {
                split.images.extend(raw.iter().skip(channel).step_by(3));
            }
        }
        split.labels.push(*label);
    }
    Ok(split)
}

/// Loads an image folder, from its cache when the files have not changed since it was written.
pub fn load(root: &Path, cache_dir: &Path) -> Result<Dataset> {
    let train = list_split(&root.join("train"))?;
    let test = list_split(&root.join("test"))?;
    if train.classes != test.classes {
        return Err(DataError::invalid(
            &root.join("test"),
            format!(
                "class folders {:?} differ from train's {:?}",
                test.classes, train.classes
            ),
        ));
    }
    let name = root.canonicalize().unwrap_or(root.to_path_buf());
    let name = name
        .file_name()
        .map_or("images".into(), |n| n.to_string_lossy().into_owned());
    let print = fingerprint(root, &[&train, &test])?;
    let root_key = root.canonicalize().map_err(|e| DataError::io(root, e))?;
    let cache_path = cache_dir.join(format!(
        "{:016x}.bin",
        fnv(root_key.to_string_lossy().as_bytes())
    ));
    if let Some(dataset) = read_cache(&cache_path, print, &name) {
        return Ok(dataset);
    }
    let first = &train.files[0].1;
    let train_images = decode_all(&train.files)?;
    let test_images = decode_all(&test.files)?;
    let gray = train_images
        .iter()
        .chain(&test_images)
        .all(|i| is_gray(i.color()));
    let shape = [
        train_images[0].height() as usize,
        train_images[0].width() as usize,
        if gray { 1 } else { 3 },
    ];
    let dataset = Dataset {
        name,
        classes: train.classes.clone(),
        image_shape: shape,
        train: to_split(&train.files, train_images, shape, first)?,
        test: to_split(&test.files, test_images, shape, first)?,
    };
    // A cache that cannot be written only costs the next run a re-decode.
    let _ = write_cache(&cache_path, print, &dataset);
    Ok(dataset)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn write_cache(path: &Path, print: u64, d: &Dataset) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(&CACHE_VERSION.to_le_bytes());
    out.extend_from_slice(&print.to_le_bytes());
    out.extend_from_slice(&d.checksum().to_le_bytes());
    for v in d.image_shape {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
    out.extend_from_slice(&(d.classes.len() as u32).to_le_bytes());
    for class in &d.classes {
        out.extend_from_slice(&(class.len() as u32).to_le_bytes());
        out.extend_from_slice(class.as_bytes());
    }
    out.extend_from_slice(&(d.train.len() as u64).to_le_bytes());
    out.extend_from_slice(&(d.test.len() as u64).to_le_bytes());
    crate::atomic::write_with(path, |file| {
        file.write_all(&out)?;
        for split in [&d.train, &d.test] {
            file.write_all(&split.labels)?;
        }
        for split in [&d.train, &d.test] {
            file.write_all(&split.images)?;
        }
        Ok(())
    })
}

/// Reads a cache written by `write_cache`. Anything in doubt — a mismatch, damage, a label
/// outside the classes, a checksum that differs — means "rebuild", never a panic.
fn read_cache(path: &Path, print: u64, name: &str) -> Option<Dataset> {
    parse_cache(&std::fs::read(path).ok()?, print, name)
}

/// Parses the bytes of a cache file written for the folder fingerprint `print`: `None` when
/// anything about them is in doubt (public for fuzzing).
pub fn parse_cache(bytes: &[u8], print: u64, name: &str) -> Option<Dataset> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = bytes.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    let u32_at = |s: &[u8]| u32::from_le_bytes(s.try_into().expect("4 bytes"));
    let u64_at = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
    if take(8)? != CACHE_MAGIC || u32_at(take(4)?) != CACHE_VERSION || u64_at(take(8)?) != print {
        return None;
    }
    let stored_checksum = u64_at(take(8)?);
    let shape = [
        u32_at(take(4)?) as usize,
        u32_at(take(4)?) as usize,
        u32_at(take(4)?) as usize,
    ];
    let n_classes = u32_at(take(4)?) as usize;
    if shape.contains(&0) || !matches!(shape[2], 1 | 3) || !(1..=256).contains(&n_classes) {
        return None;
    }
    let mut classes = Vec::new();
    for _ in 0..n_classes {
        let len = u32_at(take(4)?) as usize;
        classes.push(String::from_utf8(take(len)?.to_vec()).ok()?);
    }
    let (n_train, n_test) = (u64_at(take(8)?) as usize, u64_at(take(8)?) as usize);
    let image_len = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
    let train_labels = take(n_train)?.to_vec();
    let test_labels = take(n_test)?.to_vec();
    let train_images = take(n_train.checked_mul(image_len)?)?.to_vec();
    let test_images = take(n_test.checked_mul(image_len)?)?.to_vec();
    let labels_ok = train_labels
        .iter()
        .chain(&test_labels)
        .all(|&l| (l as usize) < n_classes);
    if at != bytes.len() || !labels_ok || n_train == 0 || n_test == 0 {
        return None;
    }
    let dataset = Dataset {
        name: name.into(),
        classes,
        image_shape: shape,
        train: Split {
            images: train_images,
            labels: train_labels,
        },
        test: Split {
            images: test_images,
            labels: test_labels,
        },
    };
    (dataset.checksum() == stored_checksum).then_some(dataset)
}
