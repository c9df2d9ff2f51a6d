//! The portability suite on this machine's adapters: lavapipe (Vulkan) and llvmpipe (GL) must
//! both be found and both pass, with their own limits and with WebGPU's defaults; where a second
//! Vulkan driver is installed (scripts/second-mesa.sh: Mesa 25.0.7 beside 22.3.6), both drivers
//! run and the report shows them side by side; the MLPerf-style figures are computed and sane;
//! and a planted bug in a kernel must be caught and reported as FAIL.

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
    two_vulkan_drivers_side_by_side(adapters, &markdown);
    for a in adapters {
        mlperf_figures_are_sane(a);
    }
}

/// Every Vulkan driver found ran, each labelled with its driver version in the report; where CI
/// meant to provide a second one (`RESNET_WGPU_EXPECT_VULKAN_DRIVERS`, set by .ci/run after
/// scripts/second-mesa.sh), it must be there.
fn two_vulkan_drivers_side_by_side(adapters: &[serde_json::Value], markdown: &str) {
    let mut drivers: Vec<&str> = adapters
        .iter()
        .filter(|a| a["backend"] == "Vulkan")
        .map(|a| a["driver"].as_str().unwrap())
        .collect();
    drivers.sort();
    drivers.dedup();
    if let Ok(want) = std::env::var("RESNET_WGPU_EXPECT_VULKAN_DRIVERS") {
        let want: usize = want
            .parse()
            .expect("RESNET_WGPU_EXPECT_VULKAN_DRIVERS is a number");
        assert!(
            drivers.len() >= want,
            "expected {want} Vulkan drivers (scripts/second-mesa.sh), found {drivers:?}"
        );
    }
    for d in &drivers {
        // Each driver has its own summary row, its own section and its own side-by-side columns.
        let rows = markdown
            .lines()
            .filter(|l| l.contains(&format!("| {d} |")))
            .count();
        assert!(rows >= 2, "no summary rows for driver {d}:\n{markdown}");
        assert!(
            markdown
                .lines()
                .any(|l| l.starts_with("## ") && l.contains(&format!(", {d}, adapter limits)"))),
            "no section for driver {d}"
        );
        assert!(
            markdown.lines().any(|l| l.starts_with("| check |")
                && l.contains(&format!("Vulkan, {d}, adapter limits"))),
            "driver {d} has no side-by-side column"
        );
    }
    if drivers.len() >= 2 {
        eprintln!("Vulkan drivers side by side: {drivers:?}");
        assert!(markdown.contains("## Side by side"), "{markdown}");
    }
}

/// The MLPerf-style figures: measured on every adapter-limits run (and only there), latency
/// percentiles in order, the Offline batch the best power of two tried by the stopping rule,
/// and the accuracy rule's top-1 within 0.1 point of the reference's, in f16 too where the
/// adapter has it.
fn mlperf_figures_are_sane(a: &serde_json::Value) {
    let m = &a["mlperf"];
    let who = format!("{} {} {}", a["backend"], a["driver"], a["limits"]);
    if a["limits"] != "adapter" {
        assert!(m.is_null(), "{who}: MLPerf figures on a WebGPU-default run");
        return;
    }
    let s = &m["single_stream"];
    let q = |k: &str| {
        s[k].as_f64()
            .unwrap_or_else(|| panic!("{who}: no {k}: {m}"))
    };
    let (p50, p90, p99) = (q("p50_ms"), q("p90_ms"), q("p99_ms"));
    assert!(
        0.0 < p50 && p50 <= p90 && p90 <= p99,
        "{who}: p50 {p50}, p90 {p90}, p99 {p99}"
    );
    assert_eq!(s["queries"], 256, "{who}: the quick suite's query count");
    let o = &m["offline"];
    let tried: Vec<(u64, f64)> = o["tried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["batch"].as_u64().unwrap(),
                t["images_per_s"].as_f64().unwrap(),
            )
        })
        .collect();
    for (i, (b, ips)) in tried.iter().enumerate() {
        assert_eq!(*b, 1 << i, "{who}: batches tried {tried:?}");
        assert!(*ips > 0.0, "{who}: {tried:?}");
    }
    let (best, best_ips) = tried
        .iter()
        .copied()
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .unwrap();
    assert_eq!(o["batch"].as_u64().unwrap(), best, "{who}: {tried:?}");
    assert_eq!(o["images_per_s"].as_f64().unwrap(), best_ips);
    assert!(best.is_power_of_two() && best <= 256, "{who}: {best}");
    // The search stops at the first fall, or at batch 256.
    let (last, last_ips) = *tried.last().unwrap();
    assert!(last == 256 || last_ips < best_ips, "{who}: {tried:?}");
    let acc = &m["accuracy"];
    assert_eq!(acc["images"], 500, "{who}: the quick suite's image count");
    let reference = acc["reference_top1_pct"].as_f64().unwrap();
    // The default model scores 93.48% on all 10,000; a reference read wrongly would not.
    assert!((85.0..100.0).contains(&reference), "{who}: {acc}");
    let f16 = a["engine_uses"]["shader_f16"].as_bool().unwrap();
    for (key, expected) in [("f32_top1_pct", true), ("f16_top1_pct", f16)] {
        match acc[key].as_f64() {
            Some(top1) => assert!(
                expected && (top1 - reference).abs() <= 0.1 + 1e-9,
                "{who}: {key} {top1} vs reference {reference}"
            ),
            None => assert!(!expected, "{who}: no {key}: {acc}"),
        }
    }
}

/// Where CI meant to provide a second Vulkan driver (`RESNET_WGPU_EXPECT_VULKAN_DRIVERS`, set by
/// .ci/run after scripts/second-mesa.sh), `adapters` must list that many: a missing driver fails
/// here in a second, not after the whole suite.
#[test]
fn the_expected_vulkan_drivers_are_present() {
    let Ok(want) = std::env::var("RESNET_WGPU_EXPECT_VULKAN_DRIVERS") else {
        return;
    };
    let want: usize = want
        .parse()
        .expect("RESNET_WGPU_EXPECT_VULKAN_DRIVERS is a number");
    let out = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
        .args(["adapters", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let adapters: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut drivers: Vec<String> = adapters
        .iter()
        .filter(|a| a["backend"] == "Vulkan")
        .map(|a| {
            format!(
                "{} {}",
                a["driver"].as_str().unwrap(),
                a["driver_info"].as_str().unwrap()
            )
        })
        .collect();
    drivers.sort();
    drivers.dedup();
    assert!(
        drivers.len() >= want,
        "expected {want} Vulkan drivers (scripts/second-mesa.sh; VK_ICD_FILENAMES={:?}), found {drivers:?}",
        std::env::var("VK_ICD_FILENAMES").ok()
    );
}

/// `--adapter` matches the driver version: each Vulkan driver's version string (the two
/// lavapipes share one adapter name) picks that driver and no other.
#[test]
fn adapter_picks_a_driver_by_its_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
        .args(["adapters", "--json"])
        .output()
        .unwrap();
    let adapters: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let versions: Vec<&str> = adapters
        .iter()
        .filter(|a| a["backend"] == "Vulkan")
        .map(|a| a["driver_info"].as_str().unwrap())
        .collect();
    assert!(!versions.is_empty(), "no Vulkan adapter");
    for version in &versions {
        let out = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
            .env("RESNET_WGPU_TUNE", "off")
            .args(["bench", "--backend", "vulkan", "--iters", "1", "--json"])
            .args(["--adapter", version])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let picked = v["adapter"].as_str().unwrap();
        assert!(
            picked.contains(version),
            "--adapter {version:?} picked {picked}"
        );
        for other in versions.iter().filter(|o| *o != version) {
            assert!(!picked.contains(other), "{picked}");
        }
    }
}

#[test]
fn a_planted_kernel_bug_is_reported_as_fail() {
    let (ok, report, _) = portability(
        &[
            "--quick",
            "--backend",
            "vulkan",
            "--no-default-limits",
            // The figures do not judge kernels; the planted bug must show in the checks.
            "--no-mlperf",
            "--inject-fault",
        ],
        &tmp("fault.json"),
    );
    assert!(!ok, "the suite passed with a broken max-pool kernel");
    // Every Vulkan driver catches it (both lavapipes where scripts/second-mesa.sh ran).
    for a in report["adapters"].as_array().unwrap() {
        let checks = a["checks"].as_array().unwrap();
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| c["status"] == "Fail")
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        let driver = &a["driver"];
        assert!(
            failed.iter().any(|n| n.starts_with("max_pool")),
            "{driver}: max_pool not caught: {failed:?}"
        );
        // ImageNet nets use max pool, so they fail too; kernels without max pool still pass.
        assert!(
            failed.iter().any(|n| n.starts_with("resnet18")),
            "{driver}: {failed:?}"
        );
        assert!(
            failed
                .iter()
                .all(|n| !n.starts_with("conv") && !n.starts_with("resnet20")),
            "{driver}: {failed:?}"
        );
    }
}
