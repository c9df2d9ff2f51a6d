//! Argument parsing and one module per subcommand.

mod adapters;
mod bench;
mod bench_train;
mod classify;
mod degradation;
mod eval;
mod info;
mod output;
mod portability;
mod run;
mod train;
mod train_step;
mod training;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use resnet_wgpu::gpu::GpuOptions;
use resnet_wgpu::model;
use resnet_wgpu::{Precision, Tune};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "resnet-wgpu",
    version,
    about = "Deep residual networks (He et al., 2015) on wgpu"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Adapter selection, accepted by every command that touches the GPU.
#[derive(Args, Clone, Debug)]
pub struct GpuArgs {
    /// auto, vulkan, gl, metal or dx12
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Use the first adapter whose name, driver or driver version contains this (case-insensitive; e.g. "Mesa 25")
    #[arg(long)]
    pub adapter: Option<String>,
}

impl GpuArgs {
    pub fn options(&self) -> GpuOptions {
        GpuOptions {
            backend: Some(self.backend.clone()),
            adapter: self.adapter.clone(),
            webgpu_default_limits: false,
        }
    }
}

/// How a network runs, accepted by every command that runs one.
#[derive(Args, Clone, Debug)]
pub struct SessionArgs {
    /// Arithmetic of the convolutions: f32, or f16 (adapters with SHADER_F16; half the weight bytes, less accurate)
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Choose each convolution's kernel by timing the candidates on this adapter: off (the fixed table), quick (a shortlist) or full (every candidate); results are cached per adapter, so only the first start pays
    #[arg(long, default_value = "quick", env = "RESNET_WGPU_TUNE")]
    pub tune: Tune,
    /// Measure for at most this many seconds per start ("none": until done); shapes left then run the fixed table's kernel and are measured by a later start
    #[arg(long, default_value = "none", env = "RESNET_WGPU_TUNE_BUDGET", value_parser = parse_budget)]
    pub tune_budget: Budget,
}

/// A tuning budget as the command line gives it.
#[derive(Clone, Copy, Debug)]
pub struct Budget(pub Option<std::time::Duration>);

fn parse_budget(s: &str) -> Result<Budget, String> {
    if s == "none" {
        return Ok(Budget(None));
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => {
            Ok(Budget(Some(std::time::Duration::from_secs_f64(v))))
        }
        _ => Err(format!(
            "'{s}' is not a tuning budget: seconds (e.g. 30) or none"
        )),
    }
}

impl SessionArgs {
    /// Says on stderr what tuning measured (nothing when every choice came from the cache).
    pub fn report_tuning(&self, session: &resnet_wgpu::Session) {
        let t = session.tuning();
        if t.measured > 0 {
            eprintln!(
                "tuned {} convolution shapes for this adapter in {:.1} s ({} candidates timed; cached in {})",
                t.shapes.len() - t.cached() - t.deferred(),
                t.seconds,
                t.measured,
                resnet_wgpu::tune::cache::path()
                    .map_or("memory only".to_string(), |p| p.display().to_string())
            );
        }
        if t.deferred() > 0 {
            eprintln!(
                "the tuning budget ran out: {} shapes keep the fixed table's kernel until a later start measures them",
                t.deferred()
            );
        }
    }
}

/// Which network: a model file, or an architecture with synthetic weights where allowed.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Model file (.safetensors, or .onnx which needs no --arch)
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Architecture (resnet18/34/50/101/152, resnet20/32/44/56/110/1202, plain-N; suffixes -v1, -a/-b/-c); not for ONNX files
    #[arg(long)]
    pub arch: Option<String>,
    /// Load a model whose weights hold NaN or infinity or whose batch-norm variances are negative (refused by default: every answer would be NaN)
    #[arg(long)]
    pub allow_non_finite: bool,
}

impl ModelArgs {
    /// Loads `path` with these options (`-` is refused: a model is read from a file).
    pub fn load(&self, path: &std::path::Path, arch: Option<&str>) -> Result<model::Model> {
        load_model(path, arch, self.allow_non_finite)
    }
}

/// Loads a model file for a command; `-` is refused with a clear line (ONNX external data and
/// format detection need a file).
pub fn load_model(
    path: &std::path::Path,
    arch: Option<&str>,
    allow_non_finite: bool,
) -> Result<model::Model> {
    if output::is_dash(path) {
        anyhow::bail!("--model - (standard input) is not supported: give the model's file name");
    }
    Ok(model::load_file_with(
        path,
        arch,
        &model::LoadOptions { allow_non_finite },
    )?)
}

/// A count flag that must be at least 1 (`--top`, `--batch`, `--iters`, `--limit`): zero is an
/// error everywhere rather than quietly becoming 1 in some commands.
pub fn positive(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number (at least 1)")),
    }
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter on every backend, with limits and features
    Adapters(adapters::AdaptersArgs),
    /// Parameter count and multiply-accumulates of an architecture
    Info(info::InfoArgs),
    /// Run a model on a raw NCHW float32 .npy input and write the logits as .npy
    Run(run::RunArgs),
    /// Classify images
    Classify(classify::ClassifyArgs),
    /// Accuracy on a real test set
    Eval(eval::EvalArgs),
    /// Time the forward pass
    Bench(bench::BenchArgs),
    /// Does each adapter compute ResNet right, and how fast?
    Portability(portability::PortabilityArgs),
    /// Train a CIFAR-style net of the paper on Fashion-MNIST on the GPU
    Train(train::TrainArgs),
    /// The paper's degradation experiment: plain nets and ResNets of the same depths, trained alike, and its figure
    Degradation(degradation::DegradationArgs),
    /// SGD steps in train mode on one batch, writing logits, gradients and state (to compare with another framework)
    TrainStep(train_step::TrainStepArgs),
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Adapters(a) => adapters::run(a),
        Command::Info(a) => info::run(a),
        Command::Run(a) => run::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Portability(a) => portability::run(a),
        Command::Train(a) => train::run(a),
        Command::Degradation(a) => degradation::run(a),
        Command::TrainStep(a) => train_step::run(a),
    }
}
