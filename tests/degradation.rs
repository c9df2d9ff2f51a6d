//! `degradation` end to end on tiny runs (depth 8, 6 steps of 8 images): the logs, the figure
//! (PNG and SVG) and the table; the logged test error against `eval` of the final model; a second
//! command that keeps finished runs; a run stopped and continued that ends bit for bit where an
//! uninterrupted one does, log and weights; options that would mix runs refused in one line.

mod common;

use safetensors::SafeTensors;
use serde_json::Value;
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

fn ok(o: Output) -> (String, String) {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "failed: {err}");
    (String::from_utf8_lossy(&o.stdout).into_owned(), err)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("resnet-wgpu-degradation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The tiny experiment into `out`, with `extra` options.
fn degradation(out: &Path, extra: &[&str]) -> Output {
    let dir = common::fashion_mnist_dir();
    let mut args = vec![
        "degradation",
        "--dataset",
        "fashion-mnist",
        "--dir",
        s(&dir),
        "--depths",
        "8",
        "--iters",
        "6",
        "--batch",
        "8",
        "--limit",
        "64",
        "--test-limit",
        "64",
        "--eval-every",
        "3",
        "--out-dir",
        s(out),
    ];
    args.extend_from_slice(extra);
    cli(&args)
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A log without what depends on the clock.
fn untimed(path: &Path) -> Vec<Value> {
    let mut rs = records(path);
    for r in &mut rs {
        let o = r.as_object_mut().unwrap();
        o.remove("seconds");
        o.remove("images_per_s");
    }
    rs
}

fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data().to_vec()))
        .collect()
}

#[test]
fn degradation_trains_both_nets_draws_the_figure_resumes_and_refuses_mixed_options() {
    let whole = scratch("whole");
    ok(degradation(&whole, &[]));

    // Each log: training error and test error at steps 3 and 6, then the "done" record.
    for net in ["plain-8", "resnet8"] {
        let rs = records(&whole.join(format!("{net}.jsonl")));
        let steps = |key: &str| -> Vec<u64> {
            rs.iter()
                .filter(|r| r.get(key).is_some())
                .map(|r| r["step"].as_u64().unwrap())
                .collect()
        };
        assert_eq!(steps("train_error"), [3, 6], "{net}: {rs:?}");
        assert_eq!(steps("test_error"), [3, 6], "{net}: {rs:?}");
        assert_eq!(rs.last().unwrap()["done"], true, "{net}: {rs:?}");
        for r in &rs {
            for key in ["train_error", "test_error"] {
                if let Some(e) = r.get(key) {
                    let e = e.as_f64().unwrap();
                    assert!((0.0..=1.0).contains(&e), "{net}: {key} {e}");
                }
            }
        }
        // The logged test error is the final model's, as `eval` (another code path: the model
        // file loaded back, its own batching) counts it on the same 64 images.
        let last_test = rs.iter().rev().find_map(|r| r.get("test_error")).unwrap();
        let model = whole.join(format!("{net}.safetensors"));
        let (out, _) = ok(cli(&[
            "eval",
            "--dataset",
            "fashion-mnist",
            "--dir",
            s(&common::fashion_mnist_dir()),
            "--model",
            s(&model),
            "--limit",
            "64",
            "--json",
        ]));
        let eval: Value = serde_json::from_str(out.trim()).unwrap();
        let correct = eval["correct"].as_u64().unwrap();
        let wrong = (last_test.as_f64().unwrap() * 64.0).round() as u64;
        assert_eq!(wrong, 64 - correct, "{net}: log {last_test}, eval {eval}");
    }

    // The table: one row a net, 6 steps, errors in percent.
    let md = std::fs::read_to_string(whole.join("degradation.md")).unwrap();
    let rows: Vec<Vec<&str>> = md
        .lines()
        .skip(2)
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{md}");
    for (row, net) in rows.iter().zip(["plain-8", "resnet8"]) {
        assert_eq!(row[..3], [net, "8", "6"], "{md}");
        for cell in &row[3..5] {
            let pct: f64 = cell.parse().unwrap();
            assert!((0.0..=100.0).contains(&pct), "{md}");
        }
    }

    // The figure: a PNG with both colours of depth 8's curves drawn on white, an SVG with the
    // legend.
    let png = image::open(whole.join("degradation.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(png.dimensions(), (1200, 480));
    let curve = png.pixels().filter(|p| p.0 == [230, 170, 0]).count();
    let ink = png.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(curve > 50, "{curve} pixels of the curves' colour");
    assert!(ink > 5_000, "{ink} pixels not white");
    let svg = std::fs::read_to_string(whole.join("degradation.svg")).unwrap();
    for name in ["plain-8", "ResNet-8", "iterations", "error (%)"] {
        assert!(svg.contains(name), "the SVG lacks '{name}'");
    }

    // Again: both runs are kept as they are (no training, logs not duplicated).
    let before = std::fs::read_to_string(whole.join("plain-8.jsonl")).unwrap();
    let started = std::time::Instant::now();
    let (_, err) = ok(degradation(&whole, &[]));
    assert!(err.contains("finished before"), "{err}");
    assert!(!err.contains("training "), "{err}");
    let after = std::fs::read_to_string(whole.join("plain-8.jsonl")).unwrap();
    assert_eq!(before, after);
    eprintln!(
        "the second command took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // --plot-only redraws from the logs.
    std::fs::remove_file(whole.join("degradation.png")).unwrap();
    ok(cli(&[
        "degradation",
        "--dataset",
        "fashion-mnist",
        "--out-dir",
        s(&whole),
        "--plot-only",
    ]));
    assert!(whole.join("degradation.png").exists());

    // Stopped mid-window (step 4 of 6, logging every 3), then continued: the same log records
    // and bit-identical weights.
    let parted = scratch("parted");
    ok(degradation(&parted, &["--stop-at", "4"]));
    assert!(!parted.join("resnet8.safetensors").exists());
    assert!(parted.join("resnet8.checkpoint.safetensors").exists());
    let (_, err) = ok(degradation(&parted, &[]));
    assert!(!err.contains("finished before"), "{err}");
    for net in ["plain-8", "resnet8"] {
        let log = |d: &Path| untimed(&d.join(format!("{net}.jsonl")));
        assert_eq!(
            log(&whole),
            log(&parted),
            "{net}: the continued run's log differs"
        );
        let model = |d: &Path| tensors(&d.join(format!("{net}.safetensors")));
        assert_eq!(
            model(&whole),
            model(&parted),
            "{net}: the continued run's weights differ"
        );
    }

    // Other options against the same directory: one line naming the option.
    let o = degradation(&whole, &["--seed", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("--seed 1, not 2"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
