//! Argument parsing and one module per subcommand.

mod adapters;
mod bench;
mod classify;
mod eval;
mod info;
mod portability;
mod run;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use resnet_wgpu::Precision;
use resnet_wgpu::gpu::GpuOptions;
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
    /// Use the first adapter whose name contains this (case-insensitive)
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
    }
}

/// Writes a file atomically: a temporary file beside it, then a rename, so that a failure never
/// leaves a half-written output.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    // A failed write (disk full) or rename (the target is a folder) removes the temporary file:
    // a failure leaves the target as it was and nothing beside it.
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow::anyhow!("{}: cannot write: {e}", path.display())
        })
}
