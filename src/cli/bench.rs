//! `resnet-wgpu bench [--model FILE | --arch NAME] [--batch N] [--iters N] [--json]`

use super::{GpuArgs, ModelArgs};
use anyhow::Result;
use clap::Args;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::graph::params::SyntheticParams;
use resnet_wgpu::{ArchSpec, Session, SessionOptions, model};
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images per forward pass
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Timed forward passes (after 2 warm-up passes)
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    gpu: GpuArgs,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let graph = match (&args.model.model, &args.model.arch) {
        (Some(path), arch) => model::load_file(path, arch.as_deref())?.graph()?,
        (None, Some(arch)) => {
            let spec = ArchSpec::parse(arch)?;
            spec.build(
                &mut SyntheticParams::new(1, spec.default_classes()),
                spec.default_input(),
            )?
        }
        (None, None) => model::default::default_model()?.graph()?,
    };
    let ctx = GpuContext::new_blocking(&args.gpu.options())?;
    let adapter = ctx.describe();
    let build_start = Instant::now();
    let session = Session::new(
        ctx,
        &graph,
        &SessionOptions {
            batch: args.batch.max(1),
            ..Default::default()
        },
    )?;
    let per_image: usize = session.input_shape().iter().product();
    let input: Vec<f32> = (0..per_image * session.batch)
        .map(|i| ((i % 97) as f32 / 97.0) - 0.5)
        .collect();
    session.run(&input)?;
    let build_s = build_start.elapsed().as_secs_f64();
    session.run(&input)?;
    let mut times: Vec<f64> = (0..args.iters.max(1))
        .map(|_| {
            let t = Instant::now();
            session.run(&input).map(|_| t.elapsed().as_secs_f64())
        })
        .collect::<Result<_>>()?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let macs = graph.macs() as f64 * session.batch as f64;
    let gflops = 2.0 * macs / median / 1e9;
    let images_per_s = session.batch as f64 / median;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "adapter": adapter, "batch": session.batch, "iters": times.len(),
                "median_ms": median * 1e3, "min_ms": times[0] * 1e3, "max_ms": times[times.len() - 1] * 1e3,
                "images_per_s": images_per_s, "gflops": gflops,
                "first_run_s": build_s, "dispatches": session.dispatch_count(),
                "activation_bytes": session.activation_bytes, "weight_bytes": session.weight_bytes,
            })
        );
    } else {
        println!("adapter          {adapter}");
        println!(
            "batch            {}  ({} dispatches per pass)",
            session.batch,
            session.dispatch_count()
        );
        println!(
            "latency          median {:.2} ms, min {:.2} ms, max {:.2} ms over {} runs",
            median * 1e3,
            times[0] * 1e3,
            times[times.len() - 1] * 1e3,
            times.len()
        );
        println!("throughput       {images_per_s:.2} images/s, {gflops:.2} GFLOP/s effective");
        println!("setup+first run  {build_s:.2} s");
        println!(
            "memory           activations {:.2} MB, weights {:.2} MB",
            session.activation_bytes as f64 / 1e6,
            session.weight_bytes as f64 / 1e6
        );
    }
    Ok(())
}
