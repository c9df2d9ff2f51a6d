//! The GPU trainer against PyTorch (tests/fixtures/training, see its README): for ResNet-20 and
//! plain-20, the first step's train-mode logits and loss, every parameter's gradient, the whole
//! state (weights and BN running statistics) after 1 and after 3 SGD steps, and the loss before
//! each step. Tolerances are set from the errors measured on lavapipe (printed by each check).

mod common;

use resnet_wgpu::Tensor;
use resnet_wgpu::graph::{Graph, Op};
use resnet_wgpu::model::{self, npy};
use resnet_wgpu::train::state_dict;
use resnet_wgpu::train::{Hyper, Trainer};
use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A fixture net, the arch its file loads as, and the tolerances (relative to each tensor's
/// largest value) of its gradients, its state after one step and after three.
struct Net {
    folder: &'static str,
    arch: &'static str,
    grads: f64,
    step1: f64,
    step3: f64,
}

const NETS: [Net; 2] = [
    // Measured on lavapipe: gradients 4.5e-6, state after 1 step 2.0e-6, after 3 steps 2.6e-4.
    Net {
        folder: "resnet20",
        arch: "resnet20",
        grads: 2e-5,
        step1: 1e-5,
        step3: 1e-3,
    },
    Net {
        folder: "plain20",
        arch: "plain-20",
        grads: 1e-1,
        step1: 1e-1,
        step3: 1e-1,
    },
];

fn fixture(net: &str, file: &str) -> PathBuf {
    common::local_fixture(&format!("training/{net}/{file}"))
}

fn fixture_graph(net: &str, arch: &str) -> Graph {
    model::load_file(&fixture(net, "weights.safetensors"), Some(arch))
        .and_then(|m| m.into_graph())
        .unwrap_or_else(|e| panic!("{net}: {e}"))
}

fn npy_f32(net: &str, file: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixture(net, file)).unwrap();
    npy::read_npy(&bytes, file).unwrap().data
}

/// Every f32 tensor of a safetensors file by name (num_batches_tracked, I64, left out).
fn tensors(net: &str, file: &str) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(fixture(net, file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .filter(|(_, t)| t.dtype() == safetensors::Dtype::F32)
        .map(|(name, t)| (name, bytemuck::pod_collect_to_vec(t.data())))
        .collect()
}

/// The graph's whole state_dict as PyTorch names it (weights and running statistics).
fn state_of(g: &Graph) -> BTreeMap<String, Vec<f32>> {
    let mut out: BTreeMap<String, Vec<f32>> = state_dict::params(g)
        .iter()
        .map(|p| (p.name.clone(), state_dict::param_data(g, p).to_vec()))
        .collect();
    for node in &g.nodes {
        if let Op::BatchNorm(bn) = &node.op {
            out.insert(format!("{}.running_mean", node.name), bn.mean.clone());
            out.insert(format!("{}.running_var", node.name), bn.var.clone());
        }
    }
    out
}

/// Checks `got` against `want` with |got - want| <= atol + rtol * max|want| (per tensor: f32
/// sums in another order differ by a fraction of the tensor's scale, not of each value) and
/// returns the worst error relative to the tensor's scale.
fn check(what: &str, got: &[f32], want: &[f32], atol: f64, rtol: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w as f64).abs();
        assert!(
            err <= atol + rtol * scale,
            "{what}[{i}]: got {g}, want {w} (error {err:e}, tensor scale {scale:e})"
        );
        assert!(g.is_finite(), "{what}[{i}] is not finite");
        worst = worst.max(err / scale.max(1e-30));
    }
    worst
}

fn check_all(
    what: &str,
    got: &BTreeMap<String, Vec<f32>>,
    want: &BTreeMap<String, Vec<f32>>,
    atol: f64,
    rtol: f64,
) {
    let mut names: Vec<&String> = got.keys().collect();
    names.sort();
    let want_names: Vec<&String> = want.keys().collect();
    assert_eq!(names, want_names, "{what}: tensor names");
    let mut worst = (0.0, String::new());
    for name in names {
        let e = check(
            &format!("{what} {name}"),
            &got[name],
            &want[name],
            atol,
            rtol,
        );
        if std::env::var_os("TRAIN_GPU_VERBOSE").is_some() {
            eprintln!("  {name}: {e:.2e}");
        }
        if e > worst.0 {
            worst = (e, name.clone());
        }
    }
    eprintln!(
        "{what}: worst error {:.2e} of the tensor's scale ({})",
        worst.0, worst.1
    );
}

fn named(list: Vec<(String, Tensor)>) -> BTreeMap<String, Vec<f32>> {
    list.into_iter().map(|(n, t)| (n, t.data)).collect()
}

#[test]
fn gpu_training_steps_match_pytorch_for_resnet20_and_plain20() {
    for Net {
        folder: net,
        arch,
        grads,
        step1,
        step3,
    } in NETS
    {
        let graph = fixture_graph(net, arch);
        let input = npy_f32(net, "input.npy");
        let labels = npy::read_labels(
            &std::fs::read(fixture(net, "labels.npy")).unwrap(),
            "labels",
        )
        .unwrap();
        let mut trainer = Trainer::new(common::gpu(), graph, labels.len(), Hyper::default())
            .unwrap_or_else(|e| panic!("{net}: {e}"));
        let losses3 = npy_f32(net, "losses3.npy");
        let loss = trainer.step(&input, &labels).unwrap().loss;
        let want_loss = npy_f32(net, "loss.npy")[0];
        eprintln!("{net}: loss {loss} (PyTorch {want_loss})");
        check(&format!("{net} loss"), &[loss], &[want_loss], 0.0, 1e-5);
        check(
            &format!("{net} train-mode logits"),
            &trainer.logits().unwrap(),
            &npy_f32(net, "logits_train.npy"),
            0.0,
            1e-5,
        );
        check_all(
            &format!("{net} gradients"),
            &named(trainer.gradients().unwrap()),
            &tensors(net, "grads.safetensors"),
            0.0,
            grads,
        );
        check_all(
            &format!("{net} state after 1 step"),
            &state_of(&trainer.graph().unwrap()),
            &tensors(net, "step1.safetensors"),
            0.0,
            step1,
        );
        let mut losses = vec![loss];
        for _ in 0..2 {
            losses.push(trainer.step(&input, &labels).unwrap().loss);
        }
        eprintln!("{net}: losses {losses:?} (PyTorch {losses3:?})");
        check(&format!("{net} losses"), &losses, &losses3, 0.0, step3);
        check_all(
            &format!("{net} state after 3 steps"),
            &state_of(&trainer.graph().unwrap()),
            &tensors(net, "step3.safetensors"),
            0.0,
            step3,
        );
        assert_eq!(trainer.steps(), 3);
    }
}
