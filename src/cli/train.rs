//! `resnet-wgpu train --arch NAME --dataset fashion-mnist [--epochs N | --iters N] [--batch 128]
//! [--lr 0.1] [--seed S] [--out model.safetensors] [--log metrics.jsonl] [--resume CHECKPOINT]`:
//! trains a CIFAR-style net of the paper on the GPU with the paper's schedule, reports test error
//! after each epoch, and writes a model that `classify`, `eval` and the web page load as it is.
//!
//! Checkpoints (`OUT.checkpoint.safetensors`, written atomically after every epoch and on
//! Ctrl-C) hold the state_dict, every parameter's momentum (`momentum.NAME`) and the step; the
//! data order and augmentation derive from the seed and the step alone, so `--resume` continues
//! with exactly the batches the run would have seen.

use super::training::{self, Outcome, RunArgs, RunPlan};
use super::{GpuArgs, positive};
use anyhow::{Result, bail};
use clap::Args;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::graph::arch::ArchSpec;
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// Architecture: a CIFAR-style net of the paper (resnet20/32/44/56/110, plain-N)
    #[arg(long)]
    arch: String,
    #[command(flatten)]
    run: RunArgs,
    /// Where the trained model goes (its checkpoint beside it: OUT.checkpoint.safetensors)
    #[arg(long, default_value = "model.safetensors")]
    out: PathBuf,
    /// Append one JSON object per logged step and per epoch to this file
    #[arg(long)]
    log: Option<PathBuf>,
    /// Log every N steps
    #[arg(long, default_value_t = 50, value_parser = positive)]
    log_every: usize,
    /// Continue from a checkpoint this command wrote (with the same --iters/--epochs, --batch,
    /// --seed and data options, for exactly the run that was stopped)
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Stop after this many steps in all, writing the checkpoint (to continue with --resume)
    #[arg(long, value_parser = positive)]
    stop_at: Option<usize>,
    #[command(flatten)]
    gpu: GpuArgs,
}

pub fn run(args: TrainArgs) -> Result<()> {
    args.run.check_dataset()?;
    let spec = ArchSpec::parse(&args.arch)?;
    if spec.imagenet {
        bail!(
            "train --dataset fashion-mnist trains the paper's CIFAR-style nets (resnet20 ... resnet1202, plain-N), not {}",
            spec.name()
        );
    }
    let hyper = args.run.hyper.hyper()?;
    let (train_set, test_set) = args.run.load_data()?;
    let source = args.run.source(&train_set)?;
    let total = args.run.total_steps(&source);
    let ctx = GpuContext::new_blocking(&args.gpu.options())?;
    let checkpoint = training::checkpoint_path(&args.out);
    let plan = RunPlan {
        spec,
        hyper,
        source,
        test_set: &test_set,
        total,
        log_every: args.log_every,
        test_every: None,
        out: args.out,
        log: args.log,
        resume: args.resume,
        stop_at: args.stop_at.map(|s| s as u64),
        stop: training::ctrl_c_flag()?,
    };
    if let Outcome::Stopped { .. } = training::train_run(ctx, plan)? {
        eprintln!("continue with --resume {}", checkpoint.display());
    }
    Ok(())
}
