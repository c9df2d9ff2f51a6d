//! One training run from the command line, shared by `train` and `degradation`: the loop, the
//! progress bar, the JSON-lines log, the test error at fixed points, checkpoints and the final
//! model.
//!
//! Checkpoints (`OUT.checkpoint.safetensors`, written atomically at every test point and on a
//! stop) hold the state_dict, every parameter's momentum (`momentum.NAME`), the step, the
//! unfinished log window (so the first record after a resume averages the same steps as an
//! uninterrupted run) and the seconds spent so far; the data order and augmentation derive from
//! the seed and the step alone, so a resumed run sees exactly the batches it would have.

use super::positive;
use super::train_step::HyperArgs;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use resnet_wgpu::dataset::FASHION_MNIST_CLASSES;
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
use resnet_wgpu::train::{Hyper, Trainer, state_dict};
use resnet_wgpu::{Session, SessionOptions, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The options `train` and `degradation` share: the data, its order and augmentation, the run's
/// length and the hyper-parameters.
#[derive(Args)]
pub struct RunArgs {
    /// Only fashion-mnist is known
    #[arg(long)]
    pub dataset: String,
    /// Folder with the IDX .gz files (default: $RESNET_WGPU_FASHION_MNIST, else where Debian's
    /// dataset-fashion-mnist package puts them)
    #[arg(
        long,
        env = "RESNET_WGPU_FASHION_MNIST",
        default_value = "/usr/share/datasets/fashion-mnist"
    )]
    pub dir: PathBuf,
    /// Epochs to train (the default: 1 unless --iters is given)
    #[arg(long, value_parser = positive, conflicts_with = "iters")]
    pub epochs: Option<usize>,
    /// Iterations (SGD steps) to train, instead of --epochs
    #[arg(long, value_parser = positive)]
    pub iters: Option<usize>,
    /// Images per step
    #[arg(long, default_value_t = 128, value_parser = positive)]
    pub batch: usize,
    #[command(flatten)]
    pub hyper: HyperArgs,
    /// Seed of the initial weights, the data order and the augmentation
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Largest random shift of an image, in pixels (the paper's CIFAR recipe: 4; 0: none)
    #[arg(long, default_value_t = 2)]
    pub shift: usize,
    /// Do not mirror half the images left to right
    #[arg(long)]
    pub no_flip: bool,
    /// Use only the first N training images (quick runs)
    #[arg(long, value_parser = positive)]
    pub limit: Option<usize>,
    /// Test on only the first N test images
    #[arg(long, value_parser = positive)]
    pub test_limit: Option<usize>,
}

impl RunArgs {
    /// Refuses datasets other than Fashion-MNIST.
    pub fn check_dataset(&self) -> Result<()> {
        if self.dataset != "fashion-mnist" {
            bail!("unknown dataset '{}' (only fashion-mnist)", self.dataset);
        }
        Ok(())
    }

    /// The training and test sets, cut to --limit and --test-limit.
    pub fn load_data(&self) -> Result<(Dataset, Dataset)> {
        load_data(&self.dir, self.limit, self.test_limit)
    }

    /// The batches of `data` in the order and augmentation these options give.
    pub fn source<'a>(&self, data: &'a Dataset) -> Result<BatchSource<'a>> {
        Ok(BatchSource {
            data,
            pre: Preprocess::named("fashion-mnist")?,
            batch: self.batch,
            max_shift: self.shift,
            flip: !self.no_flip,
            seed: self.seed,
        })
    }

    /// The run's length in steps: --iters, or --epochs (default 1) of `source`'s batches.
    pub fn total_steps(&self, source: &BatchSource) -> u64 {
        match (self.iters, self.epochs) {
            (Some(i), _) => i as u64,
            (None, e) => (e.unwrap_or(1) * source.batches_per_epoch()) as u64,
        }
    }
}

/// The training and test sets, each cut to its first `limit` images where one is given.
fn load_data(
    dir: &Path,
    limit: Option<usize>,
    test_limit: Option<usize>,
) -> Result<(Dataset, Dataset)> {
    let mut train = load_fashion_mnist_train(dir)?;
    if let Some(n) = limit {
        truncate(&mut train, n);
    }
    let mut test = load_fashion_mnist_test(dir)?;
    if let Some(n) = test_limit {
        truncate(&mut test, n);
    }
    Ok((train, test))
}

fn truncate(d: &mut Dataset, n: usize) {
    let n = n.min(d.len());
    d.labels.truncate(n);
    d.images.truncate(n * d.rows * d.cols);
}

/// A flag that Ctrl-C sets (installed once per process; every run of the process polls it).
pub fn ctrl_c_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

/// Everything one run needs.
pub struct RunPlan<'a> {
    pub spec: ArchSpec,
    pub hyper: Hyper,
    /// The batches (their seed also seeds the initial weights).
    pub source: BatchSource<'a>,
    pub test_set: &'a Dataset,
    /// Steps in all.
    pub total: u64,
    /// Log the mean loss and training error of every `log_every` steps.
    pub log_every: usize,
    /// Test (and checkpoint) every this many steps; `None`: at the end of every epoch. Always at
    /// the last step too.
    pub test_every: Option<usize>,
    /// Where the trained model goes (its checkpoint beside it).
    pub out: PathBuf,
    /// Append one JSON object per logged step, per test and at the end to this file.
    pub log: Option<PathBuf>,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
    /// Stop (writing the checkpoint) once this many steps are done in all.
    pub stop_at: Option<u64>,
    /// Stop (writing the checkpoint) when this becomes true.
    pub stop: Arc<AtomicBool>,
}

/// How a run ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Every step done, the model written, a `{"done": true}` record logged.
    Finished { seconds: f64 },
    /// Stopped at this step with its checkpoint written.
    Stopped { step: u64 },
}

/// The checkpoint file beside the model.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    let mut name = out.file_stem().unwrap_or_default().to_os_string();
    name.push(".checkpoint.safetensors");
    out.with_file_name(name)
}

/// The steps not yet logged: their sums carry over a stop, so the next record is the same.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Window {
    loss_sum: f64,
    error_sum: f64,
    steps: usize,
}

/// Trains `plan.spec` to `plan.total` steps (or to a stop), on `ctx`.
pub fn train_run(ctx: Arc<GpuContext>, plan: RunPlan) -> Result<Outcome> {
    let RunPlan {
        spec,
        hyper,
        source,
        test_set,
        total,
        log_every,
        test_every,
        out,
        log,
        resume,
        stop_at,
        stop,
    } = plan;
    let per_epoch = source.batches_per_epoch();
    if per_epoch == 0 {
        bail!(
            "a batch of {} is larger than the {} training images",
            source.batch,
            source.data.len()
        );
    }
    let schedule = Schedule::paper(hyper.lr, total, spec.depth);
    let pre = source.pre.clone();
    let resumed = match &resume {
        Some(path) => load_checkpoint(path, &spec, pre.output_shape())?,
        None => {
            let mut init = HeInit::new(source.seed, FASHION_MNIST_CLASSES.len());
            Resumed {
                graph: spec.build(&mut init, pre.output_shape())?,
                velocity: None,
                step: 0,
                window: Window::default(),
                seconds: 0.0,
            }
        }
    };
    let start = resumed.step;
    if stop_at.is_some_and(|s| s <= start) {
        return Ok(Outcome::Stopped { step: start });
    }
    eprintln!(
        "training {} on {} ({} images, batch {}, {} steps of {} per epoch; lr {} with the paper's schedule)",
        spec.name(),
        ctx.describe(),
        source.data.len(),
        source.batch,
        total,
        per_epoch,
        hyper.lr
    );
    let mut trainer = Trainer::new(ctx.clone(), resumed.graph, source.batch, hyper)?;
    trainer.set_steps(start as i64);
    if let Some(v) = &resumed.velocity {
        trainer.set_velocity(v)?;
    }
    let mut log = match &log {
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
    let checkpoint = checkpoint_path(&out);
    let mut step = start;
    let mut order_epoch = u64::MAX;
    let mut order = Vec::new();
    let mut window = resumed.window;
    let mut window_start = Instant::now();
    let run_start = Instant::now();
    let seconds = |run_start: Instant| resumed.seconds + run_start.elapsed().as_secs_f64();
    let epoch_of = |step: u64| step as f64 / per_epoch as f64;
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
        window.loss_sum += stats.loss as f64;
        window.error_sum += stats.error as f64;
        window.steps += 1;
        if step.is_multiple_of(log_every as u64) || step == total {
            let rate = (window.steps * source.batch) as f64 / window_start.elapsed().as_secs_f64();
            let n = window.steps as f64;
            let (loss, error) = (window.loss_sum / n, window.error_sum / n);
            bar.set_message(format!(
                "loss {loss:.4}  train error {:.2}%  {rate:.0} img/s",
                100.0 * error
            ));
            write_log(
                &mut log,
                serde_json::json!({"step": step, "epoch": epoch_of(step),
                    "lr": schedule.lr(step - 1), "loss": loss, "train_error": error,
                    "images_per_s": rate}),
            )?;
            window = Window::default();
            window_start = Instant::now();
        }
        bar.set_position(step);
        let test_point = match test_every {
            Some(n) => step.is_multiple_of(n as u64),
            None => step.is_multiple_of(per_epoch as u64),
        } || step == total;
        let interrupted = stop.load(Ordering::SeqCst) || stop_at.is_some_and(|s| step >= s);
        if !(test_point || interrupted) {
            continue;
        }
        let g = trainer.graph()?;
        // The test record goes in before the checkpoint, so a log never lacks a record of a
        // step its checkpoint has passed (a resume drops the records after its step).
        if test_point {
            let error = test_error(ctx.clone(), g.clone(), test_set, &pre)?;
            bar.println(format!(
                "epoch {:.2}: test error {:.2}% on {} images ({:.0} s in)",
                epoch_of(step),
                100.0 * error,
                test_set.len(),
                seconds(run_start)
            ));
            write_log(
                &mut log,
                serde_json::json!({"step": step, "epoch": epoch_of(step),
                    "test_error": error, "test_images": test_set.len(),
                    "seconds": seconds(run_start)}),
            )?;
        }
        let state = CheckpointState {
            step,
            window,
            seconds: seconds(run_start),
        };
        save_checkpoint(&checkpoint, &trainer, &g, &spec, &state)?;
        if interrupted && step < total {
            bar.abandon();
            eprintln!(
                "stopped at step {step}; checkpoint {}",
                checkpoint.display()
            );
            return Ok(Outcome::Stopped { step });
        }
    }
    // Also when a checkpoint at the last step is resumed (a run killed just before this).
    save_model(&out, &trainer.graph()?, &spec, step)?;
    bar.finish();
    let seconds = seconds(run_start);
    // After the model: a "done" record means the model is there.
    write_log(
        &mut log,
        serde_json::json!({"step": step, "done": true, "seconds": seconds}),
    )?;
    eprintln!("wrote {} ({} steps, {:.0} s)", out.display(), step, seconds);
    Ok(Outcome::Finished { seconds })
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

/// What a checkpoint keeps besides the weights and momentum.
struct CheckpointState {
    step: u64,
    window: Window,
    seconds: f64,
}

fn save_checkpoint(
    path: &Path,
    trainer: &Trainer,
    g: &Graph,
    spec: &ArchSpec,
    state: &CheckpointState,
) -> Result<()> {
    let momentum: Vec<(String, Tensor)> = trainer
        .velocity()?
        .into_iter()
        .map(|(n, t)| (format!("momentum.{n}"), t))
        .collect();
    let mut metadata = model_metadata(spec, state.step);
    // Rust prints an f64 so that it parses back to the same bits.
    metadata.insert(
        "log_window".into(),
        serde_json::to_string(&state.window).expect("numbers serialise"),
    );
    metadata.insert("seconds".into(), state.seconds.to_string());
    state_dict::save_state_with(path, g, state.step as i64, metadata, &momentum)?;
    Ok(())
}

/// What a checkpoint restores (a fresh run: step 0, no momentum).
struct Resumed {
    graph: Graph,
    velocity: Option<Vec<(String, Tensor)>>,
    step: u64,
    window: Window,
    seconds: f64,
}

fn load_checkpoint(path: &Path, spec: &ArchSpec, input: [usize; 3]) -> Result<Resumed> {
    let mut m = model::load_file(path, Some(&spec.name()))?;
    let step: u64 = m
        .metadata
        .get("steps")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            anyhow!(
                "{}: not a checkpoint of `train` (no steps in its metadata)",
                path.display()
            )
        })?;
    // Checkpoints from before the window was kept resume with an empty one.
    let window = m
        .metadata
        .get("log_window")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let seconds = m
        .metadata
        .get("seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
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
    Ok(Resumed {
        graph,
        velocity: Some(momentum),
        step,
        window,
        seconds,
    })
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
