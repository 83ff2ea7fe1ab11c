//! `sepnet export`: the files it writes, and clear errors for what it cannot export.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::common::{FASHION, TINY, fails, ok};

fn trained(dir: &Path) -> String {
    let run = dir.join("run");
    let run_s = run.to_str().unwrap().to_string();
    let args = [
        "train",
        "--model",
        TINY,
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        FASHION,
    ];
    ok(&[
        &args[..],
        &[
            "--epochs",
            "1",
            "--max-steps",
            "5",
            "--quiet",
            "--out",
            &run_s,
        ],
    ]
    .concat());
    run_s
}

#[test]
#[cfg_attr(
    not(has_fashion),
    ignore = "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"
)]
fn export_writes_onnx_safetensors_and_samples_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained(dir.path());
    ok(&["export", &run, "--format", "onnx", "--samples", "16"]);
    ok(&["export", &run, "--format", "safetensors"]);
    for file in [
        "model.onnx",
        "model.onnx.samples.safetensors",
        "model.safetensors",
    ] {
        let bytes = std::fs::read(Path::new(&run).join(file)).unwrap();
        assert!(bytes.len() > 1000, "{file}");
    }
    let header = std::fs::read(Path::new(&run).join("model.safetensors")).unwrap();
    let len = u64::from_le_bytes(header[..8].try_into().unwrap()) as usize;
    let json: serde_json::Value = serde_json::from_slice(&header[8..8 + len]).unwrap();
    assert_eq!(
        json["layers.0.conv.weight"]["shape"],
        serde_json::json!([8, 1, 3, 3])
    );
    assert_eq!(
        json["layers.3.fc.weight"]["shape"],
        serde_json::json!([10, 1568])
    );

    let not_a_run = dir.path().to_str().unwrap();
    assert!(
        fails(&["export", not_a_run, "--format", "onnx"]).contains("not a sepnet run directory")
    );
    assert!(
        fails(&["export", &run, "--format", "tflite"])
            .contains("possible values: onnx, safetensors")
    );
    let nowhere = dir.path().join("no/such/folder/model.onnx");
    let err = fails(&[
        "export",
        &run,
        "--format",
        "onnx",
        "--out",
        nowhere.to_str().unwrap(),
    ]);
    assert!(err.contains("cannot write the export"), "{err}");
    assert!(!nowhere.exists());
    never_replaced(dir.path(), &run);

    // A damaged checkpoint is refused, and no file is left behind.
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(&run).join("checkpoint/state.json")).unwrap(),
    )
    .unwrap();
    let model = Path::new(&run)
        .join("checkpoint")
        .join(state["model"]["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&model).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&model, bytes).unwrap();
    let out = dir.path().join("damaged.onnx");
    let err = fails(&[
        "export",
        &run,
        "--format",
        "onnx",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("SHA-256"), "{err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A run's own files, and anything that is not a regular file, are never an export's --out
/// (nor its samples file).
fn never_replaced(dir: &Path, run: &str) {
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    let link = dir.join("link.onnx");
    std::os::unix::fs::symlink(Path::new(run).join("config.json"), &link).unwrap();
    let state = format!("{run}/checkpoint/state.json");
    let cases = [
        (format!("{run}/config.json"), "a file of the run"),
        (format!("{run}/dataset.json"), "a file of the run"),
        (format!("{run}/metrics.csv"), "a file of the run"),
        (state.clone(), "checkpoint folder"),
        ("/dev/null".to_string(), "not a regular file"),
        (fifo.display().to_string(), "not a regular file"),
        (link.display().to_string(), "symbolic link"),
    ];
    for (out, why) in cases {
        // Only regular files are read back (reading a FIFO would wait for a writer).
        let contents = || {
            let regular = std::fs::symlink_metadata(&out).is_ok_and(|m| m.is_file());
            regular.then(|| std::fs::read(&out).unwrap())
        };
        let before = contents();
        let err = fails(&["export", run, "--format", "onnx", "--out", &out]);
        assert!(err.contains(why), "{out}: {err}");
        assert_eq!(before, contents());
    }
    let dev_null = std::fs::metadata("/dev/null").unwrap().file_type();
    assert!(dev_null.is_char_device());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    // The samples file is checked before anything is written.
    let out = dir.join("m.onnx");
    std::fs::create_dir(dir.join("m.onnx.samples.safetensors")).unwrap();
    let targets = [
        (format!("{state}.x"), "checkpoint folder"),
        (out.display().to_string(), "a folder"),
    ];
    for (target, why) in targets {
        let args = ["export", run, "--format", "onnx", "--samples", "4", "--out"];
        let err = fails(&[&args[..], &[target.as_str()]].concat());
        assert!(err.contains(why), "{target}: {err}");
    }
    assert!(
        !out.exists(),
        "nothing written when the samples path is refused"
    );
}
