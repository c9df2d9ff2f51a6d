//! The `resnet-wgpu` command line end to end: the exact spellings of DESIGN.md, outputs checked
//! against the references, and bad input refused with one line and a non-zero exit.

mod common;

use common::{check_close, local_fixture, npy, resnet18_fixture};
use std::path::Path;
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
        // The fixed kernel table: reproducible outputs and no tuning per process (tests/tune.rs
        // and cli.rs's tuning test cover tuning).
        .env("RESNET_WGPU_TUNE", "off")
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("cannot start resnet-wgpu")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a clean failure: non-zero exit, no panic, one `error:` line mentioning `needle`.
fn assert_fails_cleanly(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "should have failed; stdout: {}",
        stdout(o)
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "panicked: {err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "want one error line, got: {err}");
    assert!(
        lines[0].contains(needle),
        "error line {:?} does not mention {needle:?}",
        lines[0]
    );
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("resnet-wgpu-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `run` on MODEL and INPUT; the logits must match `dir/NAME.logits_ort.npy`.
fn run_fixture(model: &Path, input: &Path, dir: &Path, name: &str) {
    let out = tmp(&format!("{name}.logits.npy"));
    let o = cli(&[
        "run",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let got = npy(&out);
    let want = npy(&dir.join(format!("{name}.logits_ort.npy")));
    assert_eq!(got.shape, want.shape);
    let err = check_close(&got.data, &want.data, 1e-3, 0.0).unwrap();
    eprintln!("resnet-wgpu run {name}: max |error| {err:.2e}");
}

#[test]
fn run_reproduces_resnet20_reference_logits() {
    let dir = local_fixture("resnet20");
    run_fixture(
        &dir.join("resnet20.safetensors"),
        &dir.join("resnet20.input.npy"),
        &dir,
        "resnet20",
    );
}

#[test]
fn run_reproduces_resnet18_reference_logits() {
    // The seeded weights and input, written as the files a user would have.
    let (model, input) = resnet18_fixture();
    let resnet_wgpu::model::Network::Arch { weights, .. } = &model.network else {
        unreachable!()
    };
    let model_path = tmp("resnet18.safetensors");
    std::fs::write(
        &model_path,
        resnet_wgpu::model::seeded::to_safetensors(weights).unwrap(),
    )
    .unwrap();
    let input_path = tmp("resnet18.input.npy");
    std::fs::write(
        &input_path,
        resnet_wgpu::model::npy::write_npy(&input).unwrap(),
    )
    .unwrap();
    run_fixture(
        &model_path,
        &input_path,
        &local_fixture("resnet18"),
        "resnet18",
    );
}

#[test]
fn info_reports_parameters_and_macs() {
    let o = cli(&["info", "--arch", "resnet50", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["parameters"], 25_557_032);
    assert_eq!(v["macs"], 4_089_184_256u64);
}

#[test]
fn adapters_lists_at_least_one_adapter_as_json() {
    let o = cli(&["adapters", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let list = v.as_array().unwrap();
    assert!(!list.is_empty());
    assert!(
        list[0]["limits"]["max_storage_buffer_binding_size"]
            .as_u64()
            .unwrap()
            > 0
    );
    // What the engine uses of each adapter, so a report says why two adapters took different
    // kernels.
    for a in list {
        let uses = &a["engine_uses"];
        let ts = uses["timestamps"].as_str().unwrap();
        assert!(
            ["inside passes", "between passes", "none"].contains(&ts),
            "{a}"
        );
        assert!(uses["shader_f16"].is_boolean(), "{a}");
        assert!(uses["subgroup_sizes"].is_string(), "{a}");
        let coop = uses["cooperative_matrix"].as_array().unwrap();
        // Neither lavapipe nor llvmpipe GL offers matrix units.
        if a["name"].as_str().unwrap().contains("llvmpipe") {
            assert!(coop.is_empty(), "{a}");
        }
    }
    let text = cli(&["adapters"]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(
        stdout(&text).contains("engine uses: subgroups "),
        "{}",
        stdout(&text)
    );
}

#[test]
fn bad_model_files_fail_cleanly() {
    let input = local_fixture("resnet20/resnet20.input.npy");
    let input = input.to_str().unwrap();
    let out = tmp("never.npy");
    let out_s = out.to_str().unwrap();
    let o = cli(&[
        "run",
        "--model",
        "/nonexistent/model.safetensors",
        "--input",
        input,
        "--output",
        out_s,
    ]);
    assert_fails_cleanly(&o, "/nonexistent/model.safetensors");

    let garbage = tmp("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a model").unwrap();
    let o = cli(&[
        "run",
        "--model",
        garbage.to_str().unwrap(),
        "--input",
        input,
        "--output",
        out_s,
    ]);
    assert_fails_cleanly(&o, "garbage.safetensors");

    let full = std::fs::read(local_fixture("resnet20/resnet20.safetensors")).unwrap();
    let truncated = tmp("truncated.safetensors");
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let o = cli(&[
        "run",
        "--model",
        truncated.to_str().unwrap(),
        "--input",
        input,
        "--output",
        out_s,
    ]);
    assert_fails_cleanly(&o, "truncated.safetensors");

    // A valid file read as the wrong architecture names a tensor.
    let model = local_fixture("resnet20/resnet20.safetensors");
    let o = cli(&[
        "run",
        "--model",
        model.to_str().unwrap(),
        "--arch",
        "resnet18",
        "--input",
        input,
        "--output",
        out_s,
    ]);
    assert_fails_cleanly(&o, "conv1.weight");
    let o = cli(&[
        "run",
        "--model",
        model.to_str().unwrap(),
        "--arch",
        "resnet19",
        "--input",
        input,
        "--output",
        out_s,
    ]);
    assert_fails_cleanly(&o, "resnet19");
    assert!(!out.exists(), "a failed run left an output file");
}

#[test]
fn bad_inputs_fail_cleanly() {
    let model = local_fixture("resnet20/resnet20.safetensors");
    let model = model.to_str().unwrap();
    let out = tmp("never2.npy");
    let wrong_shape = tmp("wrong_shape.npy");
    let t = resnet_wgpu::Tensor::new(vec![2, 5], vec![0.0; 10]).unwrap();
    std::fs::write(
        &wrong_shape,
        resnet_wgpu::model::npy::write_npy(&t).unwrap(),
    )
    .unwrap();
    let o = cli(&[
        "run",
        "--model",
        model,
        "--input",
        wrong_shape.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_fails_cleanly(&o, "wrong_shape.npy");
    let o = cli(&[
        "run",
        "--model",
        model,
        "--input",
        model,
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_fails_cleanly(&o, "resnet20.safetensors");
    let o = cli(&["classify", model]);
    assert_fails_cleanly(&o, "image");
    assert!(!out.exists());
}

/// `bench` tunes by default (`--tune quick`), says so, writes the cache where
/// RESNET_WGPU_CACHE_DIR points, and a second start takes every choice from it.
#[test]
fn bench_tunes_by_default_caches_and_reports_it() {
    let dir = tmp("tune-cache");
    let _ = std::fs::remove_dir_all(&dir);
    let bench = || {
        Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
            .args(["bench", "--arch", "resnet20", "--iters", "2", "--json"])
            .env_remove("RESNET_WGPU_TUNE")
            .env("RESNET_WGPU_CACHE_DIR", &dir)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .expect("cannot start resnet-wgpu")
    };
    let first = bench();
    assert!(first.status.success(), "{}", stderr(&first));
    let report: serde_json::Value = serde_json::from_str(&stdout(&first)).unwrap();
    let tune = &report["tune"];
    assert_eq!(tune["mode"], "quick", "{tune}");
    // ResNet-20's convolutions come in 6 distinct shapes (stem, 3 stages, 2 downsamplings).
    assert_eq!(tune["shapes"].as_array().unwrap().len(), 6, "{tune}");
    assert!(tune["measured"].as_u64().unwrap() >= 12, "{tune}");
    assert!(
        stderr(&first).contains("tuned 6 convolution shapes"),
        "{}",
        stderr(&first)
    );
    let cache = std::fs::read_to_string(dir.join("tune.json")).expect("the cache file");
    assert!(cache.contains("conv_"), "{cache}");
    let second = bench();
    assert!(second.status.success(), "{}", stderr(&second));
    let again: serde_json::Value = serde_json::from_str(&stdout(&second)).unwrap();
    assert_eq!(again["tune"]["measured"], 0, "{}", again["tune"]);
    assert!(!stderr(&second).contains("tuned"), "{}", stderr(&second));
    let chosen = |r: &serde_json::Value| {
        r["tune"]["shapes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["chosen"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(chosen(&again), chosen(&report));
}
