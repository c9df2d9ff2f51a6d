//! The portability suite on this machine's adapters: lavapipe (Vulkan) and llvmpipe (GL) must
//! both be found and both pass, with their own limits and with WebGPU's defaults; and a planted
//! bug in a kernel must be caught and reported as FAIL.

use std::process::Command;

fn portability(args: &[&str], json: &std::path::Path) -> (bool, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
        // The fixed kernel table: reproducible outputs and no tuning per process (tests/tune.rs
        // and cli.rs's tuning test cover tuning).
        .env("RESNET_WGPU_TUNE", "off")
        .arg("portability")
        .args(args)
        .arg("--json")
        .arg(json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = std::fs::read_to_string(json)
        .unwrap_or_else(|e| panic!("no report written ({e}); stderr: {stderr}"));
    (
        out.status.success(),
        serde_json::from_str(&text).unwrap(),
        stderr,
    )
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "resnet-wgpu-portability-{}-{name}",
        std::process::id()
    ))
}

#[test]
fn lavapipe_and_llvmpipe_both_pass_the_quick_suite() {
    let md = tmp("report.md");
    let (ok, report, stderr) = portability(
        &["--quick", "--markdown", md.to_str().unwrap()],
        &tmp("report.json"),
    );
    let adapters = report["adapters"].as_array().unwrap();
    let runs: Vec<(String, String, bool)> = adapters
        .iter()
        .map(|a| {
            (
                a["backend"].as_str().unwrap().to_string(),
                a["limits"].as_str().unwrap().to_string(),
                a["init_error"].is_null()
                    && a["checks"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|c| c["status"] != "Fail"),
            )
        })
        .collect();
    for backend in ["Vulkan", "Gl"] {
        for limits in ["adapter", "WebGPU default"] {
            assert!(
                runs.iter().any(|(b, l, _)| b == backend && l == limits),
                "no {backend} adapter run with {limits} limits: {runs:?}\n{stderr}"
            );
        }
    }
    assert!(
        runs.iter().all(|r| r.2),
        "some adapter failed: {runs:?}\n{stderr}"
    );
    assert!(ok, "portability exited non-zero: {stderr}");
    // Every kernel family and the whole networks were checked on each adapter.
    for a in adapters {
        let names: Vec<&str> = a["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for family in [
            "conv",
            "max_pool",
            "global_avg_pool",
            "shortcut_a",
            "add",
            "batchnorm",
            "linear",
            "softmax",
            "resnet20",
            "resnet18",
            "resnet50",
            "split",
            // The reference fixtures, from the repository's tests/fixtures.
            "resnet20 vs ONNX Runtime logits",
            "resnet18 vs ONNX Runtime logits",
        ] {
            assert!(
                names.iter().any(|n| n.contains(family)),
                "{family} not checked on {}",
                a["name"]
            );
        }
    }
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(
        markdown.contains("| adapter | backend |")
            && markdown.matches("| PASS |").count() >= 4
            && markdown.contains("Engine uses: subgroups "),
        "{markdown}"
    );
}

#[test]
fn a_planted_kernel_bug_is_reported_as_fail() {
    let (ok, report, _) = portability(
        &[
            "--quick",
            "--backend",
            "vulkan",
            "--no-default-limits",
            "--inject-fault",
        ],
        &tmp("fault.json"),
    );
    assert!(!ok, "the suite passed with a broken max-pool kernel");
    let checks = report["adapters"][0]["checks"].as_array().unwrap();
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c["status"] == "Fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        failed.iter().any(|n| n.starts_with("max_pool")),
        "max_pool not caught: {failed:?}"
    );
    // ImageNet nets use max pool, so they fail too; kernels without max pool still pass.
    assert!(
        failed.iter().any(|n| n.starts_with("resnet18")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .all(|n| !n.starts_with("conv") && !n.starts_with("resnet20")),
        "{failed:?}"
    );
}
