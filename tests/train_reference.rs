//! The CPU training reference against PyTorch (tests/fixtures/training, see its README): the
//! state_dict names and file round trip, every backward op against finite differences of the
//! forward reference, and whole training steps of ResNet-20 and plain-20.

mod common;

use resnet_wgpu::graph::Graph;
use resnet_wgpu::model;
use resnet_wgpu::train::state_dict::{self, ParamKind};
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};

/// The two fixture nets: folder and the arch name their file is loaded with (plain-20's tensor
/// names alone would read as resnet20).
const NETS: [(&str, &str); 2] = [("resnet20", "resnet20"), ("plain20", "plain-20")];

fn fixture(net: &str, file: &str) -> PathBuf {
    common::local_fixture(&format!("training/{net}/{file}"))
}

/// The unfused graph of a fixture's starting weights, as `ArchSpec::build` makes it.
fn fixture_graph(net: &str, arch: &str) -> Graph {
    model::load_file(&fixture(net, "weights.safetensors"), Some(arch))
        .and_then(|m| m.into_graph())
        .unwrap_or_else(|e| panic!("{net}: {e}"))
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("resnet-wgpu-train-{}-{name}", std::process::id()))
}

#[test]
fn params_are_the_fixture_trainable_tensors_in_node_order() {
    for (net, arch) in NETS {
        let g = fixture_graph(net, arch);
        let params = state_dict::params(&g);
        let bytes = std::fs::read(fixture(net, "weights.safetensors")).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut trainable: Vec<String> = file
            .names()
            .into_iter()
            .filter(|k| !k.contains("running_") && !k.ends_with("num_batches_tracked"))
            .map(str::to_string)
            .collect();
        trainable.sort();
        let mut names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
        names.sort();
        assert_eq!(names, trainable, "{net}");
        // 19 convs, 19 batch norms (gamma, beta), fc weight and bias.
        assert_eq!(params.len(), 19 + 2 * 19 + 2, "{net}");
        let convs = params
            .iter()
            .filter(|p| p.kind == ParamKind::ConvWeight)
            .count();
        assert_eq!(convs, 19, "{net}");
        let order: Vec<&str> = params.iter().take(4).map(|p| p.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "conv1.weight",
                "bn1.weight",
                "bn1.bias",
                "layer1.0.conv1.weight"
            ]
        );
        let last: Vec<&str> = params
            .iter()
            .rev()
            .take(2)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(last, ["fc.bias", "fc.weight"]);
        for p in &params {
            let t = file.tensor(&p.name).unwrap();
            assert_eq!(t.shape(), p.shape.as_slice(), "{}", p.name);
            assert_eq!(state_dict::param_data(&g, p).len(), t.data().len() / 4);
        }
    }
}

/// Every tensor of `a` and `b`: same names, dtypes, shapes and bytes.
fn assert_same_tensors(a: &Path, b: &Path) {
    let (ba, bb) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    let (fa, fb) = (
        SafeTensors::deserialize(&ba).unwrap(),
        SafeTensors::deserialize(&bb).unwrap(),
    );
    let mut names = fa.names();
    names.sort();
    let mut other = fb.names();
    other.sort();
    assert_eq!(names, other, "{} vs {}", a.display(), b.display());
    for name in names {
        let (ta, tb) = (fa.tensor(name).unwrap(), fb.tensor(name).unwrap());
        assert_eq!(ta.dtype(), tb.dtype(), "{name}");
        assert_eq!(ta.shape(), tb.shape(), "{name}");
        assert!(ta.data() == tb.data(), "{name}: the values differ");
    }
}

#[test]
fn save_state_reproduces_the_fixture_state_dict_bit_for_bit() {
    for (net, arch) in NETS {
        let g = fixture_graph(net, arch);
        let out = scratch(&format!("{net}.safetensors"));
        state_dict::save_state(&out, &g, 0, Some(arch)).unwrap();
        assert_same_tensors(&out, &fixture(net, "weights.safetensors"));
        let mut tmp = out.clone().into_os_string();
        tmp.push(".tmp");
        assert!(!Path::new(&tmp).exists(), "the temporary file was left");
        // The metadata names the arch, so the file loads as plain-20 without --arch.
        let loaded = model::load_file(&out, None).unwrap();
        assert_eq!(loaded.arch().unwrap().name(), arch);
        std::fs::remove_file(&out).unwrap();
    }
}

#[test]
fn save_state_writes_the_step_count_and_a_changed_weight() {
    let (net, arch) = NETS[0];
    let mut g = fixture_graph(net, arch);
    let p = state_dict::params(&g)[0].clone();
    state_dict::param_data_mut(&mut g, &p)[0] = 42.0;
    let out = scratch("changed.safetensors");
    state_dict::save_state(&out, &g, 7, None).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let w = file.tensor("conv1.weight").unwrap();
    assert_eq!(f32::from_le_bytes(w.data()[..4].try_into().unwrap()), 42.0);
    let n = file.tensor("layer3.2.bn2.num_batches_tracked").unwrap();
    assert_eq!(n.dtype(), safetensors::Dtype::I64);
    assert_eq!(i64::from_le_bytes(n.data().try_into().unwrap()), 7);
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn save_tensors_round_trips_the_fixture_gradients() {
    let (net, _) = NETS[0];
    let path = fixture(net, "grads.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let named: Vec<(String, resnet_wgpu::Tensor)> = file
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let data = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (
                name,
                resnet_wgpu::Tensor::new(t.shape().to_vec(), data).unwrap(),
            )
        })
        .collect();
    let out = scratch("grads.safetensors");
    state_dict::save_tensors(&out, &named).unwrap();
    assert_same_tensors(&out, &path);
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn save_state_to_a_missing_folder_is_an_io_error() {
    let g = fixture_graph(NETS[0].0, NETS[0].1);
    let out = scratch("no/such/folder/state.safetensors");
    let err = state_dict::save_state(&out, &g, 0, None).unwrap_err();
    assert_eq!(err.kind(), "Io", "{err}");
}
