//! `resnet-wgpu run --model FILE [--arch NAME] --input X.npy --output Y.npy`; `-` for either
//! means standard input / output.

use super::output::{input_name, read_input, write_output};
use super::{GpuArgs, ModelArgs, SessionArgs, positive};
use anyhow::{Result, anyhow, bail};
use clap::Args;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::model::npy::{read_npy, write_npy};
use resnet_wgpu::tensor::split_batch;
use resnet_wgpu::{Session, SessionOptions, Tensor};
use std::path::PathBuf;

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Input batch, float32 NCHW .npy (- for standard input)
    #[arg(long)]
    input: PathBuf,
    /// Where to write the logits (.npy, [N, classes]; - for standard output)
    #[arg(long)]
    output: PathBuf,
    /// Images per forward pass (default: the whole input; at least 1)
    #[arg(long, value_parser = positive)]
    batch: Option<usize>,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    gpu: GpuArgs,
}

pub fn run(args: RunArgs) -> Result<()> {
    let path = args
        .model
        .model
        .as_ref()
        .ok_or_else(|| anyhow!("run needs --model FILE"))?;
    let model = args.model.load(path, args.model.arch.as_deref())?;
    let input_name = input_name(&args.input);
    let bytes = read_input(&args.input)?;
    let input = read_npy(&bytes, &input_name)?;
    let (n, [c, h, w]) = split_batch(&input.shape).map_err(|e| anyhow!("{input_name}: {e}"))?;
    if n == 0 {
        bail!("{input_name}: the batch is empty");
    }
    if c == 0 || h == 0 || w == 0 {
        bail!(
            "{input_name}: the images are empty (shape {:?})",
            input.shape
        );
    }
    let graph = model
        .into_graph_for([c, h, w])
        .map_err(|e| anyhow!("{e} (input {input_name} is {c}x{h}x{w})"))?;
    let ctx = GpuContext::new_blocking(&args.gpu.options())?;
    let opts = SessionOptions {
        batch: args.batch.unwrap_or(n),
        precision: args.session.precision,
        tune: args.session.tune,
        tune_budget: args.session.tune_budget.0,
        ..Default::default()
    };
    let session = Session::new(ctx, graph, &opts)?;
    args.session.report_tuning(&session);
    let out = session.run(&input.data)?;
    let classes = session.output_len();
    let logits = Tensor::new(vec![n, classes], out.logits)?;
    write_output(&args.output, &write_npy(&logits)?)
}
