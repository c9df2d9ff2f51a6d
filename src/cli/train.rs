//! `resnet-wgpu train --arch NAME --dataset fashion-mnist [--epochs N | --iters N] [--batch 128]
//! [--lr 0.1] [--seed S] [--out model.safetensors] [--log metrics.jsonl] [--resume CHECKPOINT]`:
//! trains a CIFAR-style net of the paper on the GPU with the paper's schedule, reports test error
//! after each epoch, and writes a model that `classify`, `eval` and the web page load as it is.
//!
//! Checkpoints (`OUT.checkpoint.safetensors`, written atomically after every epoch and on
//! Ctrl-C) hold the state_dict, every parameter's momentum (`momentum.NAME`) and the step; the
//! data order and augmentation derive from the seed and the step alone, so `--resume` continues
//! with exactly the batches the run would have seen.

use super::train_step::HyperArgs;
use super::{GpuArgs, positive};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use resnet_wgpu::dataset::{Dataset, load_fashion_mnist_test, load_fashion_mnist_train};
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::graph::Graph;
use resnet_wgpu::graph::arch::ArchSpec;
use resnet_wgpu::model::{self, Network};
use resnet_wgpu::preprocess::Preprocess;
use resnet_wgpu::scores::top_k;
use resnet_wgpu::train::data::BatchSource;
use resnet_wgpu::train::init::HeInit;
use resnet_wgpu::train::schedule::Schedule;
use resnet_wgpu::train::{Trainer, state_dict};
use resnet_wgpu::{Session, SessionOptions, Tensor};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The Fashion-MNIST classes, in label order (the metadata `classify` prints them from).
const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

#[derive(Args)]
pub struct TrainArgs {
    /// Architecture: a CIFAR-style net of the paper (resnet20/32/44/56/110, plain-N)
    #[arg(long)]
    arch: String,
    /// Only fashion-mnist is known
    #[arg(long)]
    dataset: String,
    /// Folder with the IDX .gz files (default: $RESNET_WGPU_FASHION_MNIST, else where Debian's
    /// dataset-fashion-mnist package puts them)
    #[arg(
        long,
        env = "RESNET_WGPU_FASHION_MNIST",
        default_value = "/usr/share/datasets/fashion-mnist"
    )]
    dir: PathBuf,
    /// Epochs to train (the default: 1 unless --iters is given)
    #[arg(long, value_parser = positive, conflicts_with = "iters")]
    epochs: Option<usize>,
    /// Iterations (SGD steps) to train, instead of --epochs
    #[arg(long, value_parser = positive)]
    iters: Option<usize>,
    /// Images per step
    #[arg(long, default_value_t = 128, value_parser = positive)]
    batch: usize,
    #[command(flatten)]
    hyper: HyperArgs,
    /// Seed of the initial weights, the data order and the augmentation
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Largest random shift of an image, in pixels (the paper's CIFAR recipe: 4; 0: none)
    #[arg(long, default_value_t = 2)]
    shift: usize,
    /// Do not mirror half the images left to right
    #[arg(long)]
    no_flip: bool,
    /// Use only the first N training images (quick runs)
    #[arg(long, value_parser = positive)]
    limit: Option<usize>,
    /// Evaluate on only the first N test images after each epoch
    #[arg(long, value_parser = positive)]
    test_limit: Option<usize>,
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

/// The checkpoint file beside the model.
fn checkpoint_path(out: &Path) -> PathBuf {
    let mut name = out.file_stem().unwrap_or_default().to_os_string();
    name.push(".checkpoint.safetensors");
    out.with_file_name(name)
}

pub fn run(args: TrainArgs) -> Result<()> {
    if args.dataset != "fashion-mnist" {
        bail!("unknown dataset '{}' (only fashion-mnist)", args.dataset);
    }
    let spec = ArchSpec::parse(&args.arch)?;
    if spec.imagenet {
        bail!(
            "train --dataset fashion-mnist trains the paper's CIFAR-style nets (resnet20 ... resnet1202, plain-N), not {}",
            spec.name()
        );
    }
    let hyper = args.hyper.hyper()?;
    let mut train_set = load_fashion_mnist_train(&args.dir)?;
    if let Some(n) = args.limit {
        truncate(&mut train_set, n);
    }
    let mut test_set = load_fashion_mnist_test(&args.dir)?;
    if let Some(n) = args.test_limit {
        truncate(&mut test_set, n);
    }
    let pre = Preprocess::named("fashion-mnist")?;
    let source = BatchSource {
        data: &train_set,
        pre: pre.clone(),
        batch: args.batch,
        max_shift: args.shift,
        flip: !args.no_flip,
        seed: args.seed,
    };
    let per_epoch = source.batches_per_epoch();
    if per_epoch == 0 {
        bail!(
            "a batch of {} is larger than the {} training images",
            args.batch,
            train_set.len()
        );
    }
    let total = match (args.iters, args.epochs) {
        (Some(i), _) => i as u64,
        (None, e) => (e.unwrap_or(1) * per_epoch) as u64,
    };
    let schedule = Schedule::paper(hyper.lr, total, spec.depth);

    let (graph, velocity, start) = match &args.resume {
        Some(path) => load_checkpoint(path, &spec, pre.output_shape())?,
        None => {
            let mut init = HeInit::new(args.seed, FASHION_MNIST_CLASSES.len());
            (spec.build(&mut init, pre.output_shape())?, None, 0)
        }
    };
    let ctx = GpuContext::new_blocking(&args.gpu.options())?;
    eprintln!(
        "training {} on {} ({} images, batch {}, {} steps of {} per epoch; lr {} with the paper's schedule)",
        spec.name(),
        ctx.describe(),
        train_set.len(),
        args.batch,
        total,
        per_epoch,
        hyper.lr
    );
    let mut trainer = Trainer::new(ctx.clone(), graph, args.batch, hyper)?;
    trainer.set_steps(start as i64);
    if let Some(v) = &velocity {
        trainer.set_velocity(v)?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("cannot install the Ctrl-C handler")?;
    }
    let mut log = match &args.log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        ),
        None => None,
    };
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .expect("valid template"),
    );
    bar.set_position(start);
    let checkpoint = checkpoint_path(&args.out);
    let mut step = start;
    let mut order_epoch = u64::MAX;
    let mut order = Vec::new();
    let (mut loss_sum, mut error_sum, mut window) = (0.0f64, 0.0f64, 0usize);
    let mut window_start = Instant::now();
    let run_start = Instant::now();
    while step < total {
        let epoch = step / per_epoch as u64;
        if epoch != order_epoch {
            order = source.order(epoch);
            order_epoch = epoch;
        }
        let (input, labels) = source.batch(&order, (step % per_epoch as u64) as usize, step);
        trainer.set_lr(schedule.lr(step));
        let stats = trainer.step(&input, &labels)?;
        if !stats.loss.is_finite() {
            bail!(
                "the loss became {} at step {} (lr {}): training diverged; try a smaller --lr",
                stats.loss,
                step + 1,
                schedule.lr(step)
            );
        }
        step += 1;
        loss_sum += stats.loss as f64;
        error_sum += stats.error as f64;
        window += 1;
        if window == args.log_every || step == total {
            let rate = (window * args.batch) as f64 / window_start.elapsed().as_secs_f64();
            let (loss, error) = (loss_sum / window as f64, error_sum / window as f64);
            bar.set_message(format!(
                "loss {loss:.4}  train error {:.2}%  {rate:.0} img/s",
                100.0 * error
            ));
            write_log(
                &mut log,
                serde_json::json!({"step": step, "epoch": step as f64 / per_epoch as f64,
                    "lr": schedule.lr(step - 1), "loss": loss, "train_error": error,
                    "images_per_s": rate}),
            )?;
            (loss_sum, error_sum, window) = (0.0, 0.0, 0);
            window_start = Instant::now();
        }
        bar.set_position(step);
        let epoch_done = step % per_epoch as u64 == 0 || step == total;
        let interrupted =
            stop.load(Ordering::SeqCst) || args.stop_at.is_some_and(|s| step >= s as u64);
        if epoch_done || interrupted {
            let g = trainer.graph()?;
            save_checkpoint(&checkpoint, &trainer, &g, &spec, step)?;
            if interrupted {
                bar.abandon();
                eprintln!(
                    "stopped at step {step}; checkpoint {} (continue with --resume {})",
                    checkpoint.display(),
                    checkpoint.display()
                );
                return Ok(());
            }
            let error = test_error(ctx.clone(), g.clone(), &test_set, &pre)?;
            bar.println(format!(
                "epoch {:.2}: test error {:.2}% on {} images ({:.0} s in)",
                step as f64 / per_epoch as f64,
                100.0 * error,
                test_set.len(),
                run_start.elapsed().as_secs_f64()
            ));
            write_log(
                &mut log,
                serde_json::json!({"step": step, "epoch": step as f64 / per_epoch as f64,
                    "test_error": error, "test_images": test_set.len(),
                    "seconds": run_start.elapsed().as_secs_f64()}),
            )?;
            if step == total {
                save_model(&args.out, &g, &spec, step)?;
            }
        }
    }
    bar.finish();
    eprintln!(
        "wrote {} ({} steps, {:.0} s)",
        args.out.display(),
        step,
        run_start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn truncate(d: &mut Dataset, n: usize) {
    let n = n.min(d.len());
    d.labels.truncate(n);
    d.images.truncate(n * d.rows * d.cols);
}

fn write_log(log: &mut Option<std::fs::File>, line: serde_json::Value) -> Result<()> {
    if let Some(f) = log {
        writeln!(f, "{line}").context("cannot write the training log")?;
    }
    Ok(())
}

/// What classify and eval read: the arch, how to preprocess, the class names.
fn model_metadata(spec: &ArchSpec, steps: u64) -> HashMap<String, String> {
    let classes = serde_json::to_string(&FASHION_MNIST_CLASSES).expect("strings serialise");
    HashMap::from([
        ("arch".into(), spec.name()),
        ("dataset".into(), "fashion-mnist".into()),
        (
            "input".into(),
            "28x28 gray, /255, zero-padded by 2 to 32x32, (x - mean) / std, 3 channels".into(),
        ),
        ("mean".into(), "0.2860".into()),
        ("std".into(), "0.3530".into()),
        ("classes".into(), classes),
        ("trained_by".into(), "resnet-wgpu train".into()),
        ("steps".into(), steps.to_string()),
    ])
}

fn save_model(path: &Path, g: &Graph, spec: &ArchSpec, steps: u64) -> Result<()> {
    state_dict::save_state_with(path, g, steps as i64, model_metadata(spec, steps), &[])?;
    Ok(())
}

fn save_checkpoint(
    path: &Path,
    trainer: &Trainer,
    g: &Graph,
    spec: &ArchSpec,
    steps: u64,
) -> Result<()> {
    let momentum: Vec<(String, Tensor)> = trainer
        .velocity()?
        .into_iter()
        .map(|(n, t)| (format!("momentum.{n}"), t))
        .collect();
    state_dict::save_state_with(
        path,
        g,
        steps as i64,
        model_metadata(spec, steps),
        &momentum,
    )?;
    Ok(())
}

/// What a checkpoint restores: the graph, every parameter's momentum, the step.
type Checkpoint = (Graph, Option<Vec<(String, Tensor)>>, u64);

fn load_checkpoint(path: &Path, spec: &ArchSpec, input: [usize; 3]) -> Result<Checkpoint> {
    let mut m = model::load_file(path, Some(&spec.name()))?;
    let steps: u64 = m
        .metadata
        .get("steps")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            anyhow!(
                "{}: not a checkpoint of `train` (no steps in its metadata)",
                path.display()
            )
        })?;
    let Network::Arch { weights, .. } = &mut m.network else {
        bail!("{}: not a checkpoint of `train`", path.display());
    };
    let names: Vec<String> = weights
        .keys()
        .filter(|k| k.starts_with("momentum."))
        .cloned()
        .collect();
    let momentum: Vec<(String, Tensor)> = names
        .into_iter()
        .map(|k| {
            let t = weights.remove(&k).expect("listed key");
            (k["momentum.".len()..].to_string(), t)
        })
        .collect();
    let graph = m.into_graph_for(input)?;
    Ok((graph, Some(momentum), steps))
}

/// Test error in eval mode (running statistics, batch norm folded), as `eval` computes it.
fn test_error(ctx: Arc<GpuContext>, g: Graph, test: &Dataset, pre: &Preprocess) -> Result<f64> {
    let batch = 100.min(test.len()).max(1);
    let opts = SessionOptions {
        batch,
        ..Default::default()
    };
    let session = Session::new(ctx, g, &opts)?;
    let classes = session.output_len();
    let mut wrong = 0usize;
    for first in (0..test.len()).step_by(batch) {
        let n = batch.min(test.len() - first);
        let mut input = Vec::with_capacity(n * 3 * 32 * 32);
        for i in first..first + n {
            input.extend(test.input(i, pre));
        }
        let logits = session.run(&input)?.logits;
        for (k, row) in logits.chunks(classes).take(n).enumerate() {
            let top = top_k(row, 1).first().copied();
            if top != Some(test.labels[first + k] as usize) {
                wrong += 1;
            }
        }
    }
    Ok(wrong as f64 / test.len() as f64)
}
