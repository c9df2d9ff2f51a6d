//! A run's JSON-lines log (as `training::train_run` writes it) read back into the curves the
//! figure draws, and kept in step with the run's checkpoint.

use anyhow::{Context, Result, anyhow};
use resnet_wgpu::graph::arch::{ArchSpec, Shortcut};
use serde_json::Value;
use std::path::Path;

/// One net's curves: (iteration, error as a fraction) pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct RunLog {
    /// plain-20, resnet20, ...
    pub name: String,
    pub plain: bool,
    pub depth: usize,
    /// Training error, the mean over the steps since the previous point.
    pub train: Vec<(u64, f64)>,
    /// Test error (eval mode, on the test images).
    pub test: Vec<(u64, f64)>,
    /// Steps done.
    pub steps: u64,
    /// Seconds of training so far (over every resume).
    pub seconds: f64,
    /// Whether the run finished.
    pub done: bool,
}

impl RunLog {
    /// Reads the log of `spec`'s run.
    pub fn read(path: &Path, spec: &ArchSpec) -> Result<Self> {
        let mut run = RunLog {
            name: spec.name(),
            plain: spec.shortcut == Shortcut::Plain,
            depth: spec.depth,
            train: Vec::new(),
            test: Vec::new(),
            steps: 0,
            seconds: 0.0,
            done: false,
        };
        for (i, (_, record)) in records(path)?.into_iter().enumerate() {
            let bad = || {
                anyhow!(
                    "{} line {}: not a training log record",
                    path.display(),
                    i + 1
                )
            };
            let step = record.get("step").and_then(Value::as_u64).ok_or_else(bad)?;
            run.steps = run.steps.max(step);
            if let Some(e) = record.get("train_error").and_then(Value::as_f64) {
                run.train.push((step, e));
            }
            if let Some(e) = record.get("test_error").and_then(Value::as_f64) {
                run.test.push((step, e));
            }
            if let Some(s) = record.get("seconds").and_then(Value::as_f64) {
                run.seconds = run.seconds.max(s);
            }
            run.done |= record.get("done").and_then(Value::as_bool) == Some(true);
        }
        Ok(run)
    }

    /// The last training error logged.
    pub fn final_train(&self) -> Option<f64> {
        self.train.last().map(|p| p.1)
    }

    /// The last test error logged.
    pub fn final_test(&self) -> Option<f64> {
        self.test.last().map(|p| p.1)
    }
}

/// Every line of a log, as written and parsed.
fn records(path: &Path) -> Result<Vec<(String, Value)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            let v = serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
            Ok((l.to_string(), v))
        })
        .collect()
}

/// Whether the log holds the record of a finished run.
pub fn has_done(path: &Path) -> Result<bool> {
    Ok(records(path)?
        .iter()
        .any(|(_, r)| r.get("done").and_then(Value::as_bool) == Some(true)))
}

/// Keeps the records up to `step` (none of them "done"), so a resumed run appends exactly what
/// an uninterrupted one would have written after it.
pub fn keep_until(path: &Path, step: u64) -> Result<()> {
    let kept: String = records(path)?
        .into_iter()
        .filter(|(_, r)| {
            r.get("step")
                .and_then(Value::as_u64)
                .is_some_and(|s| s <= step)
                && r.get("done").is_none()
        })
        .map(|(line, _)| line + "\n")
        .collect();
    std::fs::write(path, kept).with_context(|| format!("cannot write {}", path.display()))
}

/// The step a checkpoint was written at (its `steps` metadata).
pub fn checkpoint_step(path: &Path) -> Result<u64> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{}: not a safetensors file ({e})", path.display()))?;
    meta.metadata()
        .as_ref()
        .and_then(|m| m.get("steps"))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            anyhow!(
                "{}: not a checkpoint (no steps in its metadata)",
                path.display()
            )
        })
}
