//! The suite's report as Markdown (for people) and JSON (for machines).

use super::{AdapterReport, Check, Status};
use std::fmt::Write;

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::NotApplicable => "n/a",
    }
}

/// The checks of f16 sessions, whose errors are of another order than f32's.
fn is_f16(c: &Check) -> bool {
    c.category == "f16"
}

/// The largest abs error of the f32 checks.
fn worst(checks: &[Check]) -> f64 {
    checks
        .iter()
        .filter(|c| !is_f16(c))
        .filter_map(|c| c.errors.map(|e| e.max_abs))
        .fold(0.0, f64::max)
}

/// The largest abs error of the f16 checks, "-" when there were none.
fn worst_f16(checks: &[Check]) -> String {
    let errors: Vec<f64> = checks
        .iter()
        .filter(|c| is_f16(c))
        .filter_map(|c| c.errors.map(|e| e.max_abs))
        .collect();
    if errors.is_empty() {
        "-".into()
    } else {
        format!("{:.2e}", errors.into_iter().fold(0.0, f64::max))
    }
}

/// The three MLPerf-style cells of a summary row ("-" where not measured).
fn mlperf_cells(r: &AdapterReport) -> [String; 3] {
    let Some(m) = &r.mlperf else {
        return ["-".into(), "-".into(), "-".into()];
    };
    let latency = m.single_stream.as_ref().map_or("-".into(), |s| {
        format!("{:.2} / {:.2} / {:.2}", s.p50_ms, s.p90_ms, s.p99_ms)
    });
    let offline = m.offline.as_ref().map_or("-".into(), |o| {
        format!("{:.0} at {}", o.images_per_s, o.batch)
    });
    let pct = |p: Option<f64>| p.map_or("-".into(), |p| format!("{p:.2}"));
    let top1 = m.accuracy.as_ref().map_or("-".into(), |a| {
        format!(
            "{} / {} / {:.2}",
            pct(a.f32_top1_pct),
            pct(a.f16_top1_pct),
            a.reference_top1_pct
        )
    });
    [latency, offline, top1]
}

/// How a run is named where runs stand side by side: backend, driver (with its version) and
/// limits, since two drivers may give their adapters one name.
pub fn run_label(r: &AdapterReport) -> String {
    format!("{}, {}, {} limits", r.backend, r.driver, r.limits)
}

/// The checks whose verdict is PASS on one run and FAIL on another: "category: name", and the
/// runs that failed it.
pub fn disagreements(reports: &[AdapterReport]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for key in check_keys(reports) {
        let verdicts: Vec<(String, Status)> = reports
            .iter()
            .filter_map(|r| {
                let c = r.checks.iter().find(|c| key_of(c) == key)?;
                Some((run_label(r), c.status))
            })
            .collect();
        let failed: Vec<String> = verdicts
            .iter()
            .filter(|v| v.1 == Status::Fail)
            .map(|v| v.0.clone())
            .collect();
        if !failed.is_empty() && verdicts.iter().any(|v| v.1 == Status::Pass) {
            out.push((key, failed));
        }
    }
    out
}

fn key_of(c: &Check) -> String {
    format!("{}: {}", c.category, c.name)
}

/// Every check of every run, in first-seen order.
fn check_keys(reports: &[AdapterReport]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for c in reports.iter().flat_map(|r| &r.checks) {
        let k = key_of(c);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

/// One row per check, one column per run (status, max abs error, time), and the checks that
/// pass on one driver and fail on another.
fn side_by_side(s: &mut String, reports: &[AdapterReport]) {
    if reports.len() < 2 {
        return;
    }
    let _ = writeln!(s, "\n## Side by side\n");
    match disagreements(reports).as_slice() {
        [] => {
            let _ = writeln!(s, "No check passes on one run and fails on another.\n");
        }
        list => {
            let _ = writeln!(s, "Checks that pass on one run and fail on another:\n");
            for (key, failed) in list {
                let _ = writeln!(s, "- {key}: FAIL on {}", failed.join("; "));
            }
            let _ = writeln!(s);
        }
    }
    let labels: Vec<String> = reports.iter().map(run_label).collect();
    let _ = writeln!(s, "| check | {} |", labels.join(" | "));
    let _ = writeln!(s, "|---|{}", "---|".repeat(reports.len()));
    for key in check_keys(reports) {
        let cells: Vec<String> = reports
            .iter()
            .map(|r| match r.checks.iter().find(|c| key_of(c) == key) {
                None => "-".into(),
                Some(c) => {
                    let mut cell = status_word(c.status).to_string();
                    if let Some(e) = c.errors {
                        let _ = write!(cell, " {:.1e}", e.max_abs);
                    }
                    if let Some(t) = c.time_ms {
                        let _ = write!(cell, " {t:.1} ms");
                    }
                    cell
                }
            })
            .collect();
        let _ = writeln!(s, "| {key} | {} |", cells.join(" | "));
    }
}

/// One summary row per adapter, the runs side by side, then one table of checks per adapter.
pub fn markdown(reports: &[AdapterReport], version: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# resnet-wgpu portability report\n");
    let _ = writeln!(
        s,
        "resnet-wgpu {version}. Each adapter runs every kernel over a shape sweep and whole ResNets, compared with a CPU reference that accumulates in f64. Times are medians of whole runs (upload, dispatches, read-back). Adapters with SHADER_F16 also run the convolution cases and the networks with f16 convolutions (category f16, with their own tolerance); their errors are summarised apart from the f32 ones.\n"
    );
    let _ = writeln!(
        s,
        "The SingleStream, Offline and top-1 columns are MLPerf-style figures of the embedded default model (ResNet-20 trained on Fashion-MNIST), on runs with the adapter's limits: latency percentiles of one-image queries; the best throughput over batches 1, 2, 4, ... (the search stops at the first batch slower than the best); top-1 on the real test set with f32 and f16 convolutions, which must be within 0.1 point of the f32 CPU reference's (checks \"mlperf: accuracy\"). Runs are labelled by driver and version, since two drivers may give an adapter one name; the side-by-side table shows each check's verdict on every run, and any check that passes on one run and fails on another is listed above it.\n"
    );
    let _ = writeln!(
        s,
        "| adapter | backend | device type | driver | limits | result | checks passed | worst abs error | worst f16 abs error | SingleStream p50 / p90 / p99 (ms) | Offline (images/s at batch) | top-1 f32 / f16 / reference (%) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in reports {
        let passed = r.checks.iter().filter(|c| c.status == Status::Pass).count();
        let counted = r
            .checks
            .iter()
            .filter(|c| c.status != Status::NotApplicable)
            .count();
        let result = match &r.init_error {
            Some(_) => "FAIL (no device)".to_string(),
            None if r.passed() => "PASS".to_string(),
            None => "FAIL".to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {result} | {passed}/{counted} | {:.2e} | {} | {} |",
            r.name,
            r.backend,
            r.device_type,
            r.driver,
            r.limits,
            worst(&r.checks),
            worst_f16(&r.checks),
            mlperf_cells(r).join(" | ")
        );
    }
    side_by_side(&mut s, reports);
    for r in reports {
        let _ = writeln!(
            s,
            "\n## {} ({}, {}, {} limits)\n",
            r.name, r.backend, r.driver, r.limits
        );
        if let Some(e) = &r.init_error {
            let _ = writeln!(s, "Could not open a device: {e}");
            continue;
        }
        if let Some(uses) = &r.engine_uses {
            let _ = writeln!(s, "Engine uses: {}.\n", uses.line());
        }
        let _ = writeln!(
            s,
            "| check | status | max abs error | max rel error | max ULP | tolerance | time (ms) | note |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for c in &r.checks {
            let (abs, rel, ulp) = match c.errors {
                Some(e) => (
                    format!("{:.2e}", e.max_abs),
                    format!("{:.2e}", e.max_rel),
                    e.max_ulp.to_string(),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let time = c.time_ms.map_or("-".into(), |t| format!("{t:.1}"));
            let note = c.detail.clone().unwrap_or_default().replace('|', "/");
            let _ = writeln!(
                s,
                "| {}: {} | {} | {abs} | {rel} | {ulp} | {} | {time} | {note} |",
                c.category,
                c.name,
                status_word(c.status),
                c.tolerance
            );
        }
    }
    for (key, failed) in disagreements(reports) {
        let _ = writeln!(
            s,
            "DIFFERS {key}: passes elsewhere, FAIL on {}",
            failed.join("; ")
        );
    }
    s
}

/// One line per finished check, for progress output.
pub fn progress_line(c: &Check) -> String {
    let errors = c.errors.map_or(String::new(), |e| {
        format!(" (max abs {:.1e}, rel {:.1e})", e.max_abs, e.max_rel)
    });
    let time = c.time_ms.map_or(String::new(), |t| format!(" {t:.1} ms"));
    let detail = c
        .detail
        .as_deref()
        .map_or(String::new(), |d| format!(": {d}"));
    format!(
        "{:<4} {}: {}{errors}{time}{detail}",
        status_word(c.status),
        c.category,
        c.name
    )
}

/// A short plain-text table for the terminal.
pub fn text_summary(reports: &[AdapterReport]) -> String {
    let mut s = String::new();
    for r in reports {
        let failed: Vec<&Check> = r
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        let passed = r.checks.iter().filter(|c| c.status == Status::Pass).count();
        let verdict = if r.passed() { "PASS" } else { "FAIL" };
        let _ = writeln!(
            s,
            "{verdict}  {} ({}, {}, {}, {} limits): {passed} checks passed, {} failed, worst abs error {:.2e} (f16: {})",
            r.name,
            r.backend,
            r.device_type,
            r.driver,
            r.limits,
            failed.len(),
            worst(&r.checks),
            worst_f16(&r.checks)
        );
        if let Some(e) = &r.init_error {
            let _ = writeln!(s, "      could not open a device: {e}");
        }
        if let Some(uses) = &r.engine_uses {
            let _ = writeln!(s, "      engine uses: {}", uses.line());
        }
        if r.mlperf.is_some() {
            let [latency, offline, top1] = mlperf_cells(r);
            let _ = writeln!(
                s,
                "      SingleStream p50/p90/p99 {latency} ms; Offline {offline} images/s; top-1 f32/f16/reference {top1} %"
            );
        }
        for c in failed {
            let _ = writeln!(
                s,
                "      FAIL {}: {} {}",
                c.category,
                c.name,
                c.detail.clone().unwrap_or_default()
            );
        }
    }
    for (key, failed) in disagreements(reports) {
        let _ = writeln!(
            s,
            "DIFFERS {key}: passes elsewhere, FAIL on {}",
            failed.join("; ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(driver: &str, status: Status) -> AdapterReport {
        AdapterReport {
            name: "llvmpipe".into(),
            backend: "Vulkan".into(),
            device_type: "Cpu".into(),
            driver: driver.into(),
            limits: "adapter".into(),
            init_error: None,
            engine_uses: None,
            checks: vec![Check {
                category: "kernel".into(),
                name: "conv".into(),
                status,
                errors: None,
                tolerance: "-".into(),
                time_ms: None,
                detail: None,
            }],
            mlperf: None,
        }
    }

    #[test]
    fn a_check_that_fails_on_one_driver_only_is_listed() {
        let same = [run("Mesa 22", Status::Pass), run("Mesa 25", Status::Pass)];
        assert!(disagreements(&same).is_empty());
        assert!(markdown(&same, "0").contains("No check passes on one run and fails on another."));
        let differ = [run("Mesa 22", Status::Pass), run("Mesa 25", Status::Fail)];
        let list = disagreements(&differ);
        assert_eq!(
            list,
            vec![(
                "kernel: conv".to_string(),
                vec!["Vulkan, Mesa 25, adapter limits".to_string()]
            )]
        );
        let md = markdown(&differ, "0");
        assert!(
            md.contains("- kernel: conv: FAIL on Vulkan, Mesa 25, adapter limits")
                && md.contains("| kernel: conv | PASS | FAIL |"),
            "{md}"
        );
        assert!(text_summary(&differ).contains("DIFFERS kernel: conv"));
    }
}
