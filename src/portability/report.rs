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

/// One summary row per adapter, then one table of checks per adapter.
pub fn markdown(reports: &[AdapterReport], version: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# resnet-wgpu portability report\n");
    let _ = writeln!(
        s,
        "resnet-wgpu {version}. Each adapter runs every kernel over a shape sweep and whole ResNets, compared with a CPU reference that accumulates in f64. Times are medians of whole runs (upload, dispatches, read-back). Adapters with SHADER_F16 also run the convolution cases and the networks with f16 convolutions (category f16, with their own tolerance); their errors are summarised apart from the f32 ones.\n"
    );
    let _ = writeln!(
        s,
        "| adapter | backend | device type | driver | limits | result | checks passed | worst abs error | worst f16 abs error |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
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
            "| {} | {} | {} | {} | {} | {result} | {passed}/{counted} | {:.2e} | {} |",
            r.name,
            r.backend,
            r.device_type,
            r.driver,
            r.limits,
            worst(&r.checks),
            worst_f16(&r.checks)
        );
    }
    for r in reports {
        let _ = writeln!(s, "\n## {} ({}, {} limits)\n", r.name, r.backend, r.limits);
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
            "{verdict}  {} ({}, {}, {} limits): {passed} checks passed, {} failed, worst abs error {:.2e} (f16: {})",
            r.name,
            r.backend,
            r.device_type,
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
    s
}
