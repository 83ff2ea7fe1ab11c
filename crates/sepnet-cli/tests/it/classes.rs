//! The dataset's classes reach the network: a built-in model trained on an image folder of 3
//! or 12 classes gets a 3- or 12-way head (it said 10 before), and evaluation and prediction
//! work on it.

use std::path::Path;

use crate::common::{fails, json, ok};

/// An image folder of `classes` classes, two 28×28 grayscale PNGs per class and split.
fn folder(root: &Path, classes: usize) {
    for split in ["train", "test"] {
        for class in 0..classes {
            let dir = root.join(split).join(format!("class{class:02}"));
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..2u8 {
                let shade = (class * 20) as u8 + i;
                image::GrayImage::from_fn(28, 28, |x, y| {
                    image::Luma([shade ^ (x as u8).wrapping_mul(y as u8)])
                })
                .save(dir.join(format!("{i}.png")))
                .unwrap();
            }
        }
    }
}

#[test]
fn built_in_models_take_the_dataset_classes() {
    let dir = tempfile::tempdir().unwrap();
    for classes in [3, 12] {
        let data = dir.path().join(format!("data{classes}"));
        let run = dir.path().join(format!("run{classes}"));
        folder(&data, classes);
        let (data_s, run_s) = (data.to_str().unwrap(), run.to_str().unwrap());
        let train = [
            "train",
            "--model",
            "mnist-hybrid",
            "--dataset",
            data_s,
            "--out",
            run_s,
        ];
        ok(&[&train[..], &["--epochs", "1", "--quiet"]].concat());
        let summary = json(&run.join("summary.json"));
        assert_eq!(
            summary["confusion_matrix"].as_array().unwrap().len(),
            classes
        );
        let config = json(&run.join("config.json"));
        assert_eq!(config["network"]["classes"], classes);
        assert_eq!(config["network"]["adaptation"]["classes"][1], classes);
        let eval = json_of(&ok(&["eval", "--checkpoint", run_s, "--json"]));
        assert_eq!(
            eval["per_class_accuracy"].as_array().unwrap().len(),
            classes
        );
        let image = data.join("test/class01/0.png");
        let predicted = json_of(&ok(&[
            "predict",
            "--checkpoint",
            run_s,
            image.to_str().unwrap(),
            "--json",
        ]));
        assert!(
            predicted[0]["top"][0]["class"]
                .as_str()
                .unwrap()
                .starts_with("class")
        );
        // Pinning another number of classes is refused before anything is written.
        let pinned = dir.path().join("pinned");
        let err = fails(&[
            "train",
            "--model",
            "mnist-hybrid",
            "--dataset",
            data_s,
            "--classes",
            "10",
            "--out",
            pinned.to_str().unwrap(),
        ]);
        assert!(
            err.contains("--classes 10 does not match the dataset"),
            "{err}"
        );
        assert!(!pinned.exists());
    }
}

fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}
