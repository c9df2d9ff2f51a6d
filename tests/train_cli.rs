//! `train` and `train-step` end to end: PyTorch's losses from the command line, files that load
//! back, a run stopped and resumed that ends bit for bit where an uninterrupted one does, a
//! trained model that `classify` and `eval` use as it is, and clean errors on bad input.

mod common;

use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
        .env("RESNET_WGPU_TUNE", "off")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .args(args)
        .output()
        .expect("cannot start resnet-wgpu")
}

fn ok(o: Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "failed: {err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails_cleanly(o: Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "should have failed");
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("resnet-wgpu-train-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every tensor of a safetensors file as raw bytes, by name.
fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data().to_vec()))
        .collect()
}

#[test]
fn train_step_prints_pytorchs_losses_and_writes_files_that_load() {
    let f = |name: &str| common::local_fixture(&format!("training/resnet20/{name}"));
    let (logits, grads, state) = (
        scratch("l.npy"),
        scratch("g.safetensors"),
        scratch("s.safetensors"),
    );
    let out = ok(cli(&[
        "train-step",
        "--model",
        s(&f("weights.safetensors")),
        "--input",
        s(&f("input.npy")),
        "--labels",
        s(&f("labels.npy")),
        "--steps",
        "3",
        "--logits",
        s(&logits),
        "--grads",
        s(&grads),
        "--state",
        s(&state),
    ]));
    // README.json's losses3: 3.0409646, 1.7579710, 1.2589213.
    let losses: Vec<f32> = out
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    let want = [3.0409646f32, 1.757971, 1.2589213];
    assert_eq!(losses.len(), 3, "{out}");
    for (g, w) in losses.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "losses {losses:?}, PyTorch {want:?}");
    }
    let l = common::npy(&logits);
    assert_eq!(l.shape, vec![8, 10]);
    assert_eq!(tensors(&grads).len(), 59);
    // The state is a whole state_dict (59 parameters, 19 x 3 running statistics and counts)
    // that classify loads with no --arch.
    assert_eq!(tensors(&state).len(), 59 + 19 * 3);
    let image = common::local_fixture("images/foolbox/fashionMNIST_00_9.png");
    ok(cli(&["classify", "--model", s(&state), s(&image)]));
}

#[test]
fn train_step_refuses_bad_labels_cleanly() {
    let f = |name: &str| common::local_fixture(&format!("training/resnet20/{name}"));
    fails_cleanly(
        cli(&[
            "train-step",
            "--model",
            s(&f("weights.safetensors")),
            "--input",
            s(&f("input.npy")),
            "--labels",
            s(&f("input.npy")),
        ]),
        "labels must be a 1-D array",
    );
    fails_cleanly(
        cli(&["train", "--arch", "resnet50", "--dataset", "fashion-mnist"]),
        "CIFAR-style",
    );
}

fn train(out: &Path, extra: &[&str]) -> String {
    let dir = common::fashion_mnist_dir();
    let mut args = vec![
        "train",
        "--arch",
        "resnet20",
        "--dataset",
        "fashion-mnist",
        "--dir",
        s(&dir),
        "--limit",
        "16",
        "--batch",
        "8",
        "--iters",
        "4",
        "--test-limit",
        "20",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(cli(&args))
}

#[test]
fn a_stopped_and_resumed_run_ends_bit_for_bit_where_an_uninterrupted_one_does() {
    let whole = scratch("whole.safetensors");
    let log = scratch("whole.jsonl");
    train(&whole, &["--log", s(&log)]);
    let parted = scratch("parted.safetensors");
    train(&parted, &["--stop-at", "2"]);
    assert!(!parted.exists(), "a stopped run writes only its checkpoint");
    let checkpoint = scratch("parted.checkpoint.safetensors");
    train(&parted, &["--resume", s(&checkpoint)]);
    let (a, b) = (tensors(&whole), tensors(&parted));
    assert_eq!(a.len(), 59 + 19 * 3);
    assert_eq!(a, b, "the resumed run's final state differs");
    // 16 images at batch 8: an epoch is 2 steps, so two epochs with a test error each.
    let text = std::fs::read_to_string(&log).unwrap();
    let tested = text
        .lines()
        .filter(|l| l.contains("\"test_error\""))
        .count();
    assert_eq!(tested, 2, "{text}");
    // The model carries its preprocessing and class names.
    let image = common::local_fixture("images/foolbox/fashionMNIST_00_9.png");
    let out = ok(cli(&["classify", "--model", s(&whole), s(&image)]));
    let names = resnet_wgpu::dataset::FASHION_MNIST_CLASSES;
    assert!(names.iter().any(|n| out.contains(n)), "{out}");
    ok(cli(&[
        "eval",
        "--dataset",
        "fashion-mnist",
        "--model",
        s(&whole),
        "--limit",
        "20",
    ]));
}
