//! DIR/options.json: the options every run in DIR was trained with, so that a later command
//! with other options fails instead of continuing a run under a different recipe.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What makes two runs of one net the same run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    pub dataset: String,
    /// Steps per run (from --iters, or --epochs and the training set's size).
    pub steps: u64,
    pub batch: usize,
    pub seed: u64,
    pub shift: usize,
    pub flip: bool,
    pub limit: Option<usize>,
    pub test_limit: Option<usize>,
    pub eval_every: usize,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

/// The file: the run options, and the depths of the last command (what --plot-only redraws).
#[derive(Serialize, Deserialize)]
pub struct Stored {
    pub options: RunOptions,
    pub depths: Vec<usize>,
}

fn path(dir: &Path) -> std::path::PathBuf {
    dir.join("options.json")
}

/// The options file of DIR.
pub fn load(dir: &Path) -> Result<Stored> {
    let p = path(dir);
    let text = std::fs::read_to_string(&p)
        .with_context(|| format!("cannot read {} (no degradation runs there?)", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not an options file", p.display()))
}

/// Refuses `opts` when DIR holds runs made with other options; otherwise records them (and
/// `depths`). Other depths are fine: each depth's runs are separate files.
pub fn check_or_store(dir: &Path, opts: &RunOptions, depths: &[usize]) -> Result<()> {
    if path(dir).exists() {
        let old = load(dir)?.options;
        if let Some(diff) = difference(&old, opts) {
            bail!(
                "{}: the runs there were made with {diff}; give the same options, or another --out-dir",
                path(dir).display()
            );
        }
    }
    let stored = Stored {
        options: opts.clone(),
        depths: depths.to_vec(),
    };
    let text = serde_json::to_string_pretty(&stored).expect("options serialise");
    std::fs::write(path(dir), text + "\n")
        .with_context(|| format!("cannot write {}", path(dir).display()))
}

/// The first option that differs, as "--batch 128, not 64".
fn difference(old: &RunOptions, new: &RunOptions) -> Option<String> {
    // Through text: an f32 then reads 0.1, not 0.10000000149011612.
    let value = |o: &RunOptions| -> serde_json::Value {
        serde_json::from_str(&serde_json::to_string(o).expect("options serialise"))
            .expect("serde_json reads what it writes")
    };
    let (a, b) = (value(old), value(new));
    let (a, b) = (a.as_object()?, b.as_object()?);
    a.iter().find_map(|(key, was)| {
        let now = b.get(key)?;
        (was != now).then(|| {
            let flag = match key.as_str() {
                "steps" => "steps per run (--iters, or --epochs)".to_string(),
                "flip" => "flip (--no-flip)".to_string(),
                k => format!("--{}", k.replace('_', "-")),
            };
            format!("{flag} {}, not {}", show(was), show(now))
        })
    })
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "(none)".into(),
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> RunOptions {
        RunOptions {
            dataset: "fashion-mnist".into(),
            steps: 6,
            batch: 8,
            seed: 1,
            shift: 2,
            flip: true,
            limit: Some(64),
            test_limit: None,
            eval_every: 3,
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
        }
    }

    #[test]
    fn names_the_first_option_that_differs() {
        assert_eq!(difference(&opts(), &opts()), None);
        let other = RunOptions {
            batch: 16,
            ..opts()
        };
        assert_eq!(difference(&opts(), &other).unwrap(), "--batch 8, not 16");
        let other = RunOptions {
            test_limit: Some(5),
            ..opts()
        };
        assert_eq!(
            difference(&opts(), &other).unwrap(),
            "--test-limit (none), not 5"
        );
    }
}
