//! Whole networks against the independent references (ONNX Runtime, float64 NumPy): logits and
//! every stage's activations.

mod common;

use common::{check_close, check_sampled, gpu, local_fixture, npy, npz, resnet18_fixture};
use resnet_wgpu::graph::seeded::{RESNET18_FIXTURE_SEED, digest};
use resnet_wgpu::model::Network;
use resnet_wgpu::{Session, SessionOptions, model};
use std::path::Path;

const STAGES_CIFAR: [&str; 5] = ["stem", "layer1", "layer2", "layer3", "pool"];
const STAGES_IMAGENET: [&str; 6] = ["stem", "layer1", "layer2", "layer3", "layer4", "pool"];

/// Runs the model in `dir/NAME.safetensors` on `NAME.input.npy`; checks logits against ONNX
/// Runtime and float64 within 1e-3, and every stage against `NAME.activations.npz`.
fn check_fixture(dir: &Path, name: &str, stages: &[&str]) {
    let model = model::load_file(&dir.join(format!("{name}.safetensors")), None).unwrap();
    let input = npy(&dir.join(format!("{name}.input.npy")));
    let [n, c, h, w] = input.shape[..] else {
        panic!("input is not NCHW")
    };
    let graph = model.graph_for([c, h, w]).unwrap();
    let session = Session::new(
        gpu(),
        graph.clone(),
        &SessionOptions {
            batch: n,
            taps: stages.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    )
    .unwrap();
    let out = session.run(&input.data).unwrap();
    for reference in ["logits_ort", "logits_fp64"] {
        let want = npy(&dir.join(format!("{name}.{reference}.npy")));
        let err = check_close(&out.logits, &want.data, 1e-3, 0.0)
            .unwrap_or_else(|e| panic!("{name} vs {reference}: {e}"));
        eprintln!("{name}: max |logit error| vs {reference} = {err:.2e}");
    }
    let activations = dir.join(format!("{name}.activations.npz"));
    for stage in stages {
        let want = npz(&activations, stage);
        let got = &out.taps[*stage];
        let err = check_close(got, &want.data, 1e-3, 1e-3)
            .unwrap_or_else(|e| panic!("{name} stage {stage}: {e}"));
        eprintln!("{name}: stage {stage:<7} max error {err:.2e}");
    }
}

#[test]
fn resnet20_matches_references_at_every_stage() {
    check_fixture(&local_fixture("resnet20"), "resnet20", &STAGES_CIFAR);
}

/// The seeded weights and input are the very ones the fixture script generated: every tensor's
/// digest equals the one it wrote (so the references below are of this model).
#[test]
fn resnet18_seeded_weights_match_the_fixture_script_bit_for_bit() {
    let (model, input) = resnet18_fixture();
    let Network::Arch { weights, .. } = &model.network else {
        panic!("not an architecture")
    };
    let path = local_fixture("resnet18/resnet18.weights.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["seed"], RESNET18_FIXTURE_SEED);
    let tensors = json["tensors"].as_object().unwrap();
    assert_eq!(tensors.len(), weights.len(), "tensor count");
    for (name, want) in tensors {
        let t = weights
            .get(name)
            .unwrap_or_else(|| panic!("the generator has no tensor {name}"));
        assert_eq!(serde_json::json!(t.shape), want["shape"], "{name}: shape");
        assert_eq!(
            digest(&t.data).to_string(),
            want["digest"].as_str().unwrap(),
            "{name}: values differ from the fixture script's"
        );
    }
    assert_eq!(
        digest(&input.data).to_string(),
        json["input"]["digest"].as_str().unwrap(),
        "input"
    );
}

/// ResNet-18 (seeded weights) against ONNX Runtime and float64 logits within 1e-3, and every
/// stage against the float64 pass's sampled activations.
#[test]
fn resnet18_matches_references_at_every_stage() {
    let dir = local_fixture("resnet18");
    let (model, input) = resnet18_fixture();
    let session = Session::new(
        gpu(),
        model.clone().into_graph().unwrap(),
        &SessionOptions {
            batch: 2,
            taps: STAGES_IMAGENET.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    )
    .unwrap();
    let out = session.run(&input.data).unwrap();
    for reference in ["logits_ort", "logits_fp64"] {
        let want = npy(&dir.join(format!("resnet18.{reference}.npy")));
        let err = check_close(&out.logits, &want.data, 1e-3, 0.0)
            .unwrap_or_else(|e| panic!("resnet18 vs {reference}: {e}"));
        eprintln!("resnet18: max |logit error| vs {reference} = {err:.2e}");
    }
    let activations = dir.join("resnet18.activations.npz");
    for stage in STAGES_IMAGENET {
        let err = check_sampled(&out.taps[stage], &activations, stage, 1e-3, 1e-3)
            .unwrap_or_else(|e| panic!("resnet18 stage {stage}: {e}"));
        eprintln!("resnet18: stage {stage:<7} max error {err:.2e}");
    }
}

#[test]
fn resnet18_matches_reference_on_real_photos() {
    let (model, _) = resnet18_fixture();
    let input = npy(&local_fixture("images/photos_224.input.npy"));
    let session = Session::new(
        gpu(),
        model.clone().into_graph().unwrap(),
        &SessionOptions {
            batch: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let got = session.run(&input.data).unwrap().logits;
    let want = npy(&local_fixture("resnet18/resnet18.photos.logits_ort.npy"));
    let err = check_close(&got, &want.data, 1e-3, 0.0).unwrap();
    eprintln!("resnet18 photos: max |logit error| = {err:.2e}");
}

#[test]
fn preprocessing_reproduces_the_photo_fixture() {
    // chelsea_224.png / coffee_224.png are already resized and cropped to 224: our ImageNet
    // preprocessing must leave them as they are and normalise exactly like the fixture.
    use resnet_wgpu::preprocess::{Preprocess, load_image};
    let want = npy(&local_fixture("images/photos_224.input.npy"));
    let pre = Preprocess::imagenet();
    let mut got = Vec::new();
    for f in ["chelsea_224.png", "coffee_224.png"] {
        let img = load_image(&local_fixture(&format!("images/{f}"))).unwrap();
        got.extend(
            Preprocess {
                resize_shorter: None,
                ..pre.clone()
            }
            .apply(&img),
        );
    }
    check_close(&got, &want.data, 1e-5, 0.0).unwrap();
}
