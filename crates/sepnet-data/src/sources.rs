//! Where a dataset's files come from, in order: `--data-dir DIR`; `$SEPNET_DATA/<dataset>`;
//! the user cache (`~/.cache/sepnet/<dataset>`); for Fashion-MNIST also Debian's
//! `/usr/share/datasets/fashion-mnist`; otherwise a download into the cache.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::dataset::Dataset;
use crate::download::{Remote, fetch};
use crate::error::{DataError, Result};
use crate::{cifar, image_folder, mnist};

/// A dataset sepnet knows, or a folder of images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatasetKind {
    /// MNIST digits.
    Mnist,
    /// Zalando's Fashion-MNIST.
    FashionMnist,
    /// CIFAR-10, binary version.
    Cifar10,
    /// An image folder (`ROOT/train/<class>/…`, `ROOT/test/<class>/…`).
    Folder(PathBuf),
}

impl FromStr for DatasetKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "mnist" => Ok(DatasetKind::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fashion" => Ok(DatasetKind::FashionMnist),
            "cifar10" | "cifar-10" => Ok(DatasetKind::Cifar10),
            _ if Path::new(s).is_dir() => Ok(DatasetKind::Folder(PathBuf::from(s))),
            _ => Err(format!(
                "unknown dataset `{s}`: expected mnist, fashion-mnist, cifar10, or an image folder with train/ and test/"
            )),
        }
    }
}

impl DatasetKind {
    /// The folder name used under `$SEPNET_DATA` and the cache.
    pub fn slug(&self) -> &str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Folder(_) => "image-folders",
        }
    }

    /// What to download, and from where.
    pub fn remotes(&self) -> Vec<Remote> {
        let idx = |mirrors: &[&str], sums: [&str; 4]| {
            mnist::FILES
                .iter()
                .zip(sums)
                .map(|(stem, md5)| Remote {
                    file: format!("{stem}.gz"),
                    urls: mirrors.iter().map(|m| format!("{m}{stem}.gz")).collect(),
                    md5: md5.into(),
                })
                .collect()
        };
        match self {
            DatasetKind::Mnist => idx(
                &[
                    "https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/",
                ],
                [
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    "9fb629c4189551a2d022fa330f9573f3",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                ],
            ),
            DatasetKind::FashionMnist => idx(
                &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
                [
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    "bef4ecab320f06d8554ea6380940ec79",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                ],
            ),
            DatasetKind::Cifar10 => vec![Remote {
                file: cifar::ARCHIVE.into(),
                urls: vec!["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz".into()],
                md5: "c32a1d4ab5d03f1284b67883e8d87530".into(),
            }],
            DatasetKind::Folder(_) => Vec::new(),
        }
    }

    fn present(&self, dir: &Path) -> bool {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => mnist::present(dir),
            DatasetKind::Cifar10 => cifar::loose_present(dir) || dir.join(cifar::ARCHIVE).is_file(),
            DatasetKind::Folder(_) => false,
        }
    }

    fn load_from(&self, dir: &Path) -> Result<Dataset> {
        match self {
            DatasetKind::Mnist => mnist::load(dir, "mnist"),
            DatasetKind::FashionMnist => mnist::load(dir, "fashion-mnist"),
            DatasetKind::Cifar10 if cifar::loose_present(dir) => cifar::load_dir(dir),
            DatasetKind::Cifar10 => cifar::load_archive(&dir.join(cifar::ARCHIVE)),
            DatasetKind::Folder(root) => {
                image_folder::load(root, &cache_root().join("image-folders"))
            }
        }
    }
}

/// `$XDG_CACHE_HOME/sepnet`, else `~/.cache/sepnet`, else `./.sepnet-cache`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("sepnet");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("sepnet"),
        None => PathBuf::from(".sepnet-cache"),
    }
}

/// How to look for (and whether to download) a dataset.
#[derive(Clone, Debug, Default)]
pub struct Locator {
    /// `--data-dir`: the folder holding the files; checked first and alone when given.
    pub data_dir: Option<PathBuf>,
    /// Refuse to touch the network.
    pub offline: bool,
    /// Draw a progress bar while downloading.
    pub progress: bool,
}

impl Locator {
    /// The folders searched, in order, for a named dataset.
    pub fn candidates(&self, kind: &DatasetKind) -> Vec<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return vec![dir.clone()];
        }
        let mut dirs = Vec::new();
        if let Some(root) = std::env::var_os("SEPNET_DATA").filter(|d| !d.is_empty()) {
            dirs.push(PathBuf::from(root).join(kind.slug()));
        }
        dirs.push(cache_root().join(kind.slug()));
        if *kind == DatasetKind::FashionMnist {
            dirs.push(PathBuf::from("/usr/share/datasets/fashion-mnist"));
        }
        dirs
    }

    /// Finds (or downloads) and loads a dataset.
    pub fn load(&self, kind: &DatasetKind) -> Result<Dataset> {
        let dir = self.locate(kind)?;
        kind.load_from(&dir)
    }

    /// The folder holding a dataset's files, downloading them first when they are nowhere.
    /// For an image folder, its root.
    pub fn locate(&self, kind: &DatasetKind) -> Result<PathBuf> {
        if let DatasetKind::Folder(root) = kind {
            return Ok(root.clone());
        }
        let candidates = self.candidates(kind);
        if let Some(dir) = candidates.iter().find(|d| kind.present(d)) {
            return Ok(dir.clone());
        }
        // Download into --data-dir when given, else into the cache.
        let target = self
            .data_dir
            .clone()
            .unwrap_or_else(|| cache_root().join(kind.slug()));
        let files: Vec<String> = kind.remotes().iter().map(|r| r.file.clone()).collect();
        let not_found = |why: String| {
            DataError::NotFound(format!(
                "{} not found (looked in {}). {why}\nPut {} into {} (or pass --data-dir DIR holding them).",
                kind.slug(),
                candidates
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                files.join(", "),
                target.display()
            ))
        };
        if self.offline {
            return Err(not_found("Downloads are off (--offline).".into()));
        }
        for remote in kind.remotes() {
            fetch(&remote, &target, self.progress)
                .map_err(|e| not_found(format!("Downloading failed: {e}.")))?;
        }
        Ok(target)
    }
}
