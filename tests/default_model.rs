//! The embedded default model (ResNet-20 trained on Fashion-MNIST) is a real classifier: the
//! PyTorch reference's logits, its labels on the 20 sample images, and its accuracy on the real
//! 10,000-image test set.

mod common;

use common::{check_close, gpu, local_fixture, npy};
use resnet_wgpu::model::default::default_model;
use resnet_wgpu::preprocess::{Preprocess, load_image};
use resnet_wgpu::{Session, SessionOptions};
use std::path::PathBuf;
use std::process::Command;

fn sample_images() -> Vec<PathBuf> {
    let dir = local_fixture("images/foolbox");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("fashionMNIST_")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 20);
    files
}

/// The label is the last number of the file name (fashionMNIST_IDX_LABEL.png).
fn label_of(p: &std::path::Path) -> usize {
    p.file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .rsplit('_')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn preprocessing_and_logits_match_pytorch_on_the_samples() {
    let model = default_model().unwrap();
    let pre = Preprocess::for_model(&model);
    assert_eq!(pre.output_shape(), [3, 32, 32]);
    let input: Vec<f32> = sample_images()
        .iter()
        .flat_map(|p| pre.apply(&load_image(p).unwrap()))
        .collect();
    let want_input = npy(&local_fixture("default_model/foolbox_fmnist.input.npy"));
    check_close(&input, &want_input.data, 1e-5, 0.0)
        .expect("preprocessing differs from the reference");
    let session = Session::new(
        gpu(),
        model.clone().into_graph().unwrap(),
        &SessionOptions {
            batch: 20,
            ..Default::default()
        },
    )
    .unwrap();
    let logits = session.run(&input).unwrap().logits;
    let want = npy(&local_fixture(
        "default_model/foolbox_fmnist.logits_torch.npy",
    ));
    let err = check_close(&logits, &want.data, 1e-3, 1e-4).unwrap();
    eprintln!("default model on the 20 samples: max |logit error| {err:.2e}");
}

#[test]
fn classify_without_a_model_gives_the_reference_labels() {
    let images = sample_images();
    let out = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
        // The fixed kernel table: reproducible outputs and no tuning per process (tests/tune.rs
        // and cli.rs's tuning test cover tuning).
        .env("RESNET_WGPU_TUNE", "off")
        .args(["classify", "--json", "--top", "3"])
        .args(&images)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v.as_array().unwrap();
    assert_eq!(results.len(), 20);
    let names = default_model().unwrap().class_names().unwrap();
    for (r, path) in results.iter().zip(&images) {
        let top = &r["top"][0];
        assert_eq!(
            top["index"].as_u64().unwrap() as usize,
            label_of(path),
            "{}",
            path.display()
        );
        assert_eq!(top["label"], names[label_of(path)]);
        let p = top["probability"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0);
    }
}

/// The whole real test set: accuracy within 0.1 point of the reference, >= 99.9% agreement with
/// the reference predictions.
#[test]
fn eval_on_the_real_fashion_mnist_test_set() {
    let preds_path =
        std::env::temp_dir().join(format!("resnet-wgpu-preds-{}.txt", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
        // The fixed kernel table: reproducible outputs and no tuning per process (tests/tune.rs
        // and cli.rs's tuning test cover tuning).
        .env("RESNET_WGPU_TUNE", "off")
        .args([
            "eval",
            "--dataset",
            "fashion-mnist",
            "--batch",
            "128",
            "--json",
            "--predictions",
        ])
        .arg(&preds_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["images"], 10000);
    let accuracy = v["accuracy"].as_f64().unwrap();
    let ours: Vec<i64> = std::fs::read_to_string(&preds_path)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let bytes = std::fs::read(local_fixture("default_model/fmnist_test_preds.npy")).unwrap();
    let reference: Vec<i64> = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap();
    let agree = ours.iter().zip(&reference).filter(|(a, b)| a == b).count();
    eprintln!(
        "fashion-mnist: accuracy {:.2}%, agreement {agree}/10000, {:.1} images/s",
        accuracy * 100.0,
        v["images_per_s"].as_f64().unwrap()
    );
    assert!(
        (accuracy - 0.9348).abs() <= 0.001,
        "accuracy {accuracy} vs reference 0.9348"
    );
    assert!(
        agree >= 9990,
        "only {agree} of 10000 predictions agree with the reference"
    );
}
