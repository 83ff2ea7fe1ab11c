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
///
/// ```
/// use sepnet_data::DatasetKind;
/// let kind: DatasetKind = "fashion-mnist".parse().unwrap();
/// assert_eq!(kind, DatasetKind::FashionMnist);
/// assert_eq!(serde_json::to_string(&kind).unwrap(), "\"fashion-mnist\"");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
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
            // A folder is kept by its absolute path, so a run can be resumed from elsewhere.
            _ if Path::new(s).is_dir() => Ok(DatasetKind::Folder(
                std::fs::canonicalize(s).unwrap_or_else(|_| PathBuf::from(s)),
            )),
            _ => Err(format!(
                "unknown dataset `{s}`: expected mnist, fashion-mnist, cifar10, or an image folder with train/ and test/"
            )),
        }
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatasetKind::Folder(root) => write!(f, "{}", root.display()),
            named => f.write_str(named.slug()),
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
        self.problems(dir).is_empty()
    }

    /// What keeps `dir` from holding this dataset: each missing file, or a folder where a
    /// file should be. Empty when the dataset is there.
    pub fn problems(&self, dir: &Path) -> Vec<String> {
        let check = |name: &str, alternative: Option<&str>| -> Option<String> {
            let names: Vec<&str> = std::iter::once(name).chain(alternative).collect();
            if names.iter().any(|n| dir.join(n).is_file()) {
                return None;
            }
            if let Some(n) = names.iter().find(|n| dir.join(n).exists()) {
                return Some(format!("{} is not a file", dir.join(n).display()));
            }
            Some(match alternative {
                Some(alt) => format!("{name} (or {alt}) is missing"),
                None => format!("{name} is missing"),
            })
        };
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => mnist::FILES
                .iter()
                .filter_map(|stem| check(&format!("{stem}.gz"), Some(stem)))
                .collect(),
            DatasetKind::Cifar10 => {
                let loose: Vec<String> = cifar::TRAIN_FILES
                    .iter()
                    .chain([&cifar::TEST_FILE, &cifar::META_FILE])
                    .filter_map(|f| check(f, None))
                    .collect();
                match check(cifar::ARCHIVE, None) {
                    Some(archive) if !loose.is_empty() => {
                        vec![format!(
                            "{archive}, and so are loose files: {}",
                            loose.join("; ")
                        )]
                    }
                    _ => Vec::new(),
                }
            }
            DatasetKind::Folder(_) => Vec::new(),
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
        let dataset = kind.load_from(&dir)?;
        dataset
            .check_classes()
            .map_err(|problem| DataError::invalid(&dir, problem))?;
        Ok(dataset)
    }

    /// The folder holding a dataset's files, downloading them first when they are nowhere.
    /// For an image folder, its root. A folder the user named (`--data-dir`) is only read:
    /// sepnet never downloads into it nor replaces a file in it.
    pub fn locate(&self, kind: &DatasetKind) -> Result<PathBuf> {
        if let DatasetKind::Folder(root) = kind {
            return Ok(root.clone());
        }
        if let Some(dir) = &self.data_dir {
            return check_user_folder(kind, dir);
        }
        let candidates = self.candidates(kind);
        if let Some(dir) = candidates.iter().find(|d| kind.present(d)) {
            return Ok(dir.clone());
        }
        let target = cache_root().join(kind.slug());
        let not_found = |why: String| {
            let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
            let files: Vec<String> = kind.remotes().into_iter().map(|r| r.file).collect();
            DataError::NotFound(format!(
                "{} not found (looked in {}). {why}\nPut {} into {} (or pass --data-dir DIR holding them).",
                kind.slug(),
                looked.join(", "),
                files.join(", "),
                target.display()
            ))
        };
        if self.offline {
            return Err(not_found("Downloads are off (--offline).".into()));
        }
        // Only what is missing is fetched; a file already in the cache is never replaced.
        let missing = kind.problems(&target);
        for remote in kind.remotes() {
            if missing.iter().any(|m| m.starts_with(&remote.file)) {
                fetch(&remote, &target, self.progress)
                    .map_err(|e| not_found(format!("Downloading failed: {e}.")))?;
            }
        }
        match kind.problems(&target).first() {
            None => Ok(target),
            Some(problem) => Err(not_found(format!("In the cache, {problem}."))),
        }
    }
}

/// `--data-dir DIR` must hold the dataset; the error lists exactly what is wrong with it.
fn check_user_folder(kind: &DatasetKind, dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(DataError::NotFound(format!(
            "--data-dir {}: {}",
            dir.display(),
            if dir.exists() {
                "is not a folder"
            } else {
                "no such folder"
            }
        )));
    }
    let problems = kind.problems(dir);
    if problems.is_empty() {
        return Ok(dir.to_path_buf());
    }
    let hint = if dir.join("train").is_dir() && dir.join("test").is_dir() {
        format!(
            "\nIt looks like an image folder (train/ and test/ inside): give it as the dataset itself, e.g. `--dataset {}`.",
            dir.display()
        )
    } else {
        String::new()
    };
    Err(DataError::NotFound(format!(
        "--data-dir {} does not hold {}: {}. sepnet does not download into a folder you name; \
         leave out --data-dir to use (or download into) {}.{hint}",
        dir.display(),
        kind.slug(),
        problems.join("; "),
        cache_root().join(kind.slug()).display()
    )))
}
