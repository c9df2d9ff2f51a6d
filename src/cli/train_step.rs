//! `resnet-wgpu train-step --model W --input X.npy --labels Y.npy [--steps N] --logits L.npy
//! --grads G.safetensors --state S.safetensors`: N SGD steps in train mode on one batch, for
//! comparing the engine's training with another framework's step by step.

use super::{GpuArgs, ModelArgs, positive};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use resnet_wgpu::Tensor;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::model::npy::{read_labels, read_npy, write_npy};
use resnet_wgpu::tensor::split_batch;
use resnet_wgpu::train::{Hyper, Trainer, state_dict};
use std::path::PathBuf;

/// SGD's hyper-parameters, PyTorch's conventions (the paper's CIFAR values by default).
#[derive(Args, Clone, Debug)]
pub struct HyperArgs {
    /// Learning rate
    #[arg(long, default_value_t = 0.1)]
    pub lr: f32,
    /// Momentum (v = momentum * v + g; w -= lr * v)
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Weight decay, added to every parameter's gradient as weight_decay * w
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f32,
}

impl HyperArgs {
    pub fn hyper(&self) -> Result<Hyper> {
        for (name, v) in [
            ("--lr", self.lr),
            ("--momentum", self.momentum),
            ("--weight-decay", self.weight_decay),
        ] {
            if !v.is_finite() || v < 0.0 {
                bail!("{name} must be a finite number of at least 0, not {v}");
            }
        }
        Ok(Hyper {
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            ..Hyper::default()
        })
    }
}

#[derive(Args)]
pub struct TrainStepArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The batch, float32 NCHW .npy
    #[arg(long)]
    input: PathBuf,
    /// Its class indices, a 1-D int64 (or int32, uint8) .npy
    #[arg(long)]
    labels: PathBuf,
    /// SGD steps to take on this batch
    #[arg(long, default_value_t = 1, value_parser = positive)]
    steps: usize,
    #[command(flatten)]
    hyper: HyperArgs,
    /// Where to write the first step's train-mode logits (.npy, [N, classes])
    #[arg(long)]
    logits: Option<PathBuf>,
    /// Where to write the first step's gradients (.safetensors, the weights' names)
    #[arg(long)]
    grads: Option<PathBuf>,
    /// Where to write the state after the last step (.safetensors state_dict: weights and batch-norm running statistics)
    #[arg(long)]
    state: Option<PathBuf>,
    #[command(flatten)]
    gpu: GpuArgs,
}

pub fn run(args: TrainStepArgs) -> Result<()> {
    let path = args
        .model
        .model
        .as_ref()
        .ok_or_else(|| anyhow!("train-step needs --model FILE"))?;
    let model = args.model.load(path, args.model.arch.as_deref())?;
    let arch = model.arch().map(|a| a.name());
    let input_name = args.input.display().to_string();
    let bytes = std::fs::read(&args.input).with_context(|| format!("cannot read {input_name}"))?;
    let input = read_npy(&bytes, &input_name)?;
    let (n, shape) = split_batch(&input.shape).map_err(|e| anyhow!("{input_name}: {e}"))?;
    let labels_name = args.labels.display().to_string();
    let bytes =
        std::fs::read(&args.labels).with_context(|| format!("cannot read {labels_name}"))?;
    let labels = read_labels(&bytes, &labels_name)?;
    if labels.len() != n {
        bail!(
            "{labels_name}: {} labels for the {n} images of {input_name}",
            labels.len()
        );
    }
    let graph = model
        .into_graph_for(shape)
        .map_err(|e| anyhow!("{e} (input {input_name} is {shape:?})"))?;
    let ctx = GpuContext::new_blocking(&args.gpu.options())?;
    let mut trainer = Trainer::new(ctx, graph, n, args.hyper.hyper()?)?;
    for step in 0..args.steps {
        let stats = trainer.step(&input.data, &labels)?;
        println!("step {}: loss {:.7}", step + 1, stats.loss);
        if step == 0 {
            if let Some(out) = &args.logits {
                let logits = trainer.logits()?;
                let classes = logits.len() / n;
                let t = Tensor::new(vec![n, classes], logits)?;
                std::fs::write(out, write_npy(&t)?)
                    .with_context(|| format!("cannot write {}", out.display()))?;
            }
            if let Some(out) = &args.grads {
                state_dict::save_tensors(out, &trainer.gradients()?)?;
            }
        }
    }
    if let Some(out) = &args.state {
        state_dict::save_state(out, &trainer.graph()?, trainer.steps(), arch.as_deref())?;
    }
    Ok(())
}
