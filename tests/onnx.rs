//! The ONNX loader: the reference fixtures against ONNX Runtime / PyTorch logits, small graphs
//! for each exporter's conventions (built here with the protobuf types, no Python), and errors.

mod common;

use common::{check_close, gpu, local_fixture, npy, root, shared_fixture};
use resnet_wgpu::{Session, SessionOptions, model};
use std::path::Path;

/// Runs an ONNX model file on an input .npy; returns (logits, max error vs the reference).
fn run_onnx_file(model_path: &Path, input: &Path, want: &Path) -> f32 {
    let model = model::load_file(model_path, None).unwrap();
    let input = npy(input);
    let [n, c, h, w] = input.shape[..] else {
        panic!("input is not NCHW")
    };
    let graph = model.graph_for([c, h, w]).unwrap();
    let session = Session::new(
        gpu(),
        &graph,
        &SessionOptions {
            batch: n,
            ..Default::default()
        },
    )
    .unwrap();
    let got = session.run(&input.data).unwrap().logits;
    let want = npy(want);
    let err = check_close(&got, &want.data, 1e-3, 0.0)
        .unwrap_or_else(|e| panic!("{}: {e}", model_path.display()));
    eprintln!(
        "{}: max |logit error| = {err:.2e}",
        model_path.file_name().unwrap().to_string_lossy()
    );
    err
}

#[test]
fn resnet20_fixture_onnx_matches_onnx_runtime() {
    let dir = local_fixture("resnet20");
    run_onnx_file(
        &dir.join("resnet20.onnx"),
        &dir.join("resnet20.input.npy"),
        &dir.join("resnet20.logits_ort.npy"),
    );
}

#[test]
fn resnet18_fixture_onnx_matches_onnx_runtime() {
    let dir = shared_fixture("resnet18");
    run_onnx_file(
        &dir.join("resnet18.onnx"),
        &dir.join("resnet18.input.npy"),
        &dir.join("resnet18.logits_ort.npy"),
    );
}

#[test]
fn fmnist_torch_export_matches_pytorch() {
    let dir = root().join("../shared/models");
    assert!(dir.exists(), "missing ../shared/models");
    run_onnx_file(
        &dir.join("resnet20_fmnist.onnx"),
        &dir.join("foolbox_fmnist.input.npy"),
        &dir.join("foolbox_fmnist.logits_torch.npy"),
    );
}
