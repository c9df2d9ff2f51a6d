//! `resnet-wgpu degradation --dataset fashion-mnist [--depths 20,56] [--epochs N | --iters N]
//! [--out-dir degradation/]`: the paper's degradation experiment (Fig. 1 and 6). For each depth
//! it trains plain-D and ResNet-D (option A) with the same seed, data order and schedule, tests
//! every --eval-every steps, and draws training error (dashed) and test error (solid) against
//! iterations, plain nets left and ResNets right, with a Markdown table of the final errors.
//!
//! Every run lives in DIR as RUN.jsonl (its log), RUN.checkpoint.safetensors and, once done,
//! RUN.safetensors; DIR/options.json holds the options the runs were made with, so a second
//! command continues stopped runs, skips finished ones and refuses options that would mix runs.

mod figure;
mod options;
mod runlog;
mod table;

use super::training::{self, Outcome, RunArgs, RunPlan};
use super::{GpuArgs, positive};
use anyhow::{Context, Result, bail};
use clap::Args;
use options::RunOptions;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::graph::arch::ArchSpec;
use runlog::RunLog;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

#[derive(Args)]
pub struct DegradationArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Depths to compare, 6n+2 each (default: 20,56, the paper's Fig. 1; with --plot-only: the
    /// depths of the last command in DIR)
    #[arg(long, value_delimiter = ',', value_parser = positive)]
    depths: Option<Vec<usize>>,
    /// Log the training error (the mean over these steps) and test every N steps
    #[arg(long, default_value_t = 500, value_parser = positive)]
    eval_every: usize,
    /// Where the logs, checkpoints, models, figure and table go
    #[arg(long, default_value = "degradation")]
    out_dir: PathBuf,
    /// Stop every run once it has done this many steps in all (continue with the same command
    /// without it)
    #[arg(long, value_parser = positive)]
    stop_at: Option<usize>,
    /// Train nothing: redraw the figure and the table from the logs in DIR
    #[arg(long)]
    plot_only: bool,
    #[command(flatten)]
    gpu: GpuArgs,
}

/// The paper's Fig. 1 compares 20 and 56 layers.
const DEFAULT_DEPTHS: [usize; 2] = [20, 56];

pub fn run(args: DegradationArgs) -> Result<()> {
    args.run.check_dataset()?;
    let dir = &args.out_dir;
    if args.plot_only {
        let depths = match &args.depths {
            Some(d) => d.clone(),
            None => options::load(dir)?.depths,
        };
        return draw(dir, &nets(&depths)?);
    }
    let depths = args.depths.clone().unwrap_or(DEFAULT_DEPTHS.to_vec());
    let specs = nets(&depths)?;
    let run = &args.run;
    let hyper = run.hyper.hyper()?;
    let (train_set, test_set) = run.load_data()?;
    let source = || run.source(&train_set);
    let total = run.total_steps(&source()?);
    let opts = RunOptions {
        dataset: run.dataset.clone(),
        steps: total,
        batch: run.batch,
        seed: run.seed,
        shift: run.shift,
        flip: !run.no_flip,
        limit: run.limit,
        test_limit: run.test_limit,
        eval_every: args.eval_every,
        lr: hyper.lr,
        momentum: hyper.momentum,
        weight_decay: hyper.weight_decay,
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    options::check_or_store(dir, &opts, &depths)?;

    let stop = training::ctrl_c_flag()?;
    let mut ctx: Option<std::sync::Arc<GpuContext>> = None;
    let mut stopped = false;
    for spec in &specs {
        let name = spec.name();
        let files = RunFiles::new(dir, &name);
        if files.finished()? {
            eprintln!("{name}: finished before, kept ({})", files.log.display());
            continue;
        }
        let resume = files.prepare_log()?;
        let ctx = match &ctx {
            Some(c) => c.clone(),
            None => ctx
                .insert(GpuContext::new_blocking(&args.gpu.options())?)
                .clone(),
        };
        let plan = RunPlan {
            spec: spec.clone(),
            hyper,
            source: source()?,
            test_set: &test_set,
            total,
            log_every: args.eval_every,
            test_every: Some(args.eval_every),
            out: files.model.clone(),
            log: Some(files.log.clone()),
            resume,
            stop_at: args.stop_at.map(|s| s as u64),
            stop: stop.clone(),
        };
        if let Outcome::Stopped { .. } = training::train_run(ctx, plan)? {
            stopped = true;
            if stop.load(Ordering::SeqCst) {
                break;
            }
        }
    }
    draw(dir, &specs)?;
    if stopped {
        eprintln!("stopped; the same command continues every unfinished run where it stopped");
    }
    Ok(())
}

/// plain-D and resnetD (option A, the paper's CIFAR nets) for every depth, plain ones first.
fn nets(depths: &[usize]) -> Result<Vec<ArchSpec>> {
    let mut specs = Vec::new();
    for prefix in ["plain-", "resnet"] {
        for d in depths {
            let spec = ArchSpec::parse(&format!("{prefix}{d}"))?;
            if spec.imagenet {
                bail!(
                    "--depths {d}: the degradation experiment uses the paper's CIFAR nets, of depth 6n+2 (8, 14, 20, 32, 44, 56, 110)"
                );
            }
            specs.push(spec);
        }
    }
    Ok(specs)
}

/// Reads every run's log and writes DIR/degradation.png, .svg and .md.
fn draw(dir: &Path, specs: &[ArchSpec]) -> Result<()> {
    let mut runs = Vec::new();
    for spec in specs {
        let files = RunFiles::new(dir, &spec.name());
        if files.log.exists() {
            runs.push(RunLog::read(&files.log, spec)?);
        }
    }
    if runs.is_empty() {
        bail!("{}: no run logs to draw (RUN.jsonl)", dir.display());
    }
    let png = dir.join("degradation.png");
    let svg = dir.join("degradation.svg");
    figure::draw(&runs, &png, &svg)?;
    let md = dir.join("degradation.md");
    std::fs::write(&md, table::markdown(&runs))
        .with_context(|| format!("cannot write {}", md.display()))?;
    eprintln!(
        "wrote {}, {} and {}",
        png.display(),
        svg.display(),
        md.display()
    );
    Ok(())
}

/// The files of one run in DIR.
struct RunFiles {
    log: PathBuf,
    model: PathBuf,
    checkpoint: PathBuf,
}

impl RunFiles {
    fn new(dir: &Path, name: &str) -> Self {
        let model = dir.join(format!("{name}.safetensors"));
        Self {
            log: dir.join(format!("{name}.jsonl")),
            checkpoint: training::checkpoint_path(&model),
            model,
        }
    }

    /// Done: the final model is there and the log ends with its "done" record.
    fn finished(&self) -> Result<bool> {
        Ok(self.model.exists() && self.log.exists() && runlog::has_done(&self.log)?)
    }

    /// Makes the log agree with the checkpoint (records past its step, from a run killed
    /// before its next checkpoint, go; without a checkpoint, the whole log) and returns the
    /// checkpoint to resume from, if any.
    fn prepare_log(&self) -> Result<Option<PathBuf>> {
        let step = if self.checkpoint.exists() {
            Some(runlog::checkpoint_step(&self.checkpoint)?)
        } else {
            None
        };
        if self.log.exists() {
            runlog::keep_until(&self.log, step.unwrap_or(0))?;
        }
        Ok(step.map(|_| self.checkpoint.clone()))
    }
}
