// Included by the build scripts of the crates whose tests read real datasets.
//
// Each dataset the tests can use becomes a `cfg` when its files are present; a test that
// needs an absent one is marked `ignore` with the reason, so `cargo test` counts and names
// what did not run instead of reporting it `ok`. With SEPNET_REQUIRE_DATA=1 (CI sets it) an
// absent dataset fails the build. The same for a local Slurm, with SEPNET_REQUIRE_SLURM=1.

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    let shared = |sub: &str| root.join(sub).display().to_string();
    let datasets = [
        ("fashion", "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz".to_string()),
        ("shared_mnist", shared("mnist/train-images-idx3-ubyte.gz")),
        ("shared_cifar_partial", shared("cifar-10-partial/test_batch_first1000.bin")),
        ("shared_cifar_jpeg", shared("cifar-10-jpeg/batches.meta.txt")),
    ];
    let required = std::env::var("SEPNET_REQUIRE_DATA").is_ok_and(|v| v == "1");
    slurm();
    println!("cargo::rerun-if-env-changed=SEPNET_REQUIRE_DATA");
    for (name, path) in datasets {
        println!("cargo::rustc-check-cfg=cfg(has_{name})");
        println!("cargo::rerun-if-changed={path}");
        if std::path::Path::new(&path).is_file() {
            println!("cargo::rustc-cfg=has_{name}");
        } else if required {
            panic!("SEPNET_REQUIRE_DATA=1 but {path} is absent: the tests that need it would not run");
        }
    }
}

/// A local Slurm (Debian's slurm-wlm and munge) for the sweep tests: `has_slurm` when its
/// programs are installed; SEPNET_REQUIRE_SLURM=1 (CI) makes their absence an error.
fn slurm() {
    println!("cargo::rustc-check-cfg=cfg(has_slurm)");
    println!("cargo::rerun-if-env-changed=SEPNET_REQUIRE_SLURM");
    let programs = ["/usr/bin/sbatch", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged"];
    for program in programs {
        println!("cargo::rerun-if-changed={program}");
    }
    if programs.iter().all(|p| std::path::Path::new(p).is_file()) {
        println!("cargo::rustc-cfg=has_slurm");
    } else if std::env::var("SEPNET_REQUIRE_SLURM").is_ok_and(|v| v == "1") {
        panic!("SEPNET_REQUIRE_SLURM=1 but slurm-wlm and munge are not installed");
    }
}
