//! `resnet-wgpu bench [--model FILE | --arch NAME] [--batch N] [--iters N] [--json] [--profile]`

use super::{GpuArgs, ModelArgs, SessionArgs, positive};
use anyhow::Result;
use clap::Args;
use resnet_wgpu::cpu_time::process_cpu_seconds;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::graph::params::SyntheticParams;
use resnet_wgpu::portability::mlperf;
use resnet_wgpu::tune::TuneReport;
use resnet_wgpu::{ArchSpec, ConvPolicy, Session, SessionOptions, Tune, model};
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images per forward pass (at least 1)
    #[arg(long, default_value_t = 1, value_parser = positive)]
    batch: usize,
    /// Timed forward passes, after 2 warm-up passes (at least 1)
    #[arg(long, default_value_t = 10, value_parser = positive)]
    iters: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Time every layer with GPU timestamps and print a table, slowest first
    #[arg(long)]
    profile: bool,
    /// Also measure MLPerf-style figures: SingleStream latency percentiles (one image per query)
    /// and Offline throughput at the best batch of 1, 2, 4, ..., 256
    #[arg(long)]
    mlperf: bool,
    /// SingleStream queries with --mlperf (at least 1)
    #[arg(long, default_value_t = mlperf::single_stream_queries(false), value_parser = positive)]
    queries: usize,
    /// Use the plain reference convolution kernel instead of the tuned ones
    #[arg(long)]
    reference_conv: bool,
    /// Time whole training steps (forward in train mode, backward, SGD) instead of inference
    #[arg(long)]
    train: bool,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    gpu: GpuArgs,
}

/// One row of a profile: a dispatch and its median GPU time.
struct Row {
    layer: String,
    kernel: String,
    family: &'static str,
    ms: f64,
    macs: u64,
    gflops: f64,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let graph = match (&args.model.model, &args.model.arch) {
        (Some(path), arch) => args.model.load(path, arch.as_deref())?.into_graph()?,
        (None, Some(arch)) => {
            let spec = ArchSpec::parse(arch)?;
            spec.build(
                &mut SyntheticParams::new(1, spec.default_classes()),
                spec.default_input(),
            )?
        }
        (None, None) => model::default::default_model()?.into_graph()?,
    };
    let ctx = GpuContext::new_blocking(&args.gpu.options())?;
    if args.train {
        let name = args
            .model
            .arch
            .clone()
            .unwrap_or_else(|| "the default model".into());
        return super::bench_train::run(
            ctx,
            graph,
            &name,
            args.batch,
            args.iters,
            args.profile,
            args.json,
        );
    }
    let adapter = ctx.describe();
    let setup_start = Instant::now();
    let macs_per_image = graph.macs();
    let options = SessionOptions {
        batch: args.batch.max(1),
        conv: if args.reference_conv {
            ConvPolicy::Reference
        } else {
            ConvPolicy::Auto
        },
        precision: args.session.precision,
        tune: args.session.tune,
        tune_budget: args.session.tune_budget.0,
        ..Default::default()
    };
    let mlperf_graph = args.mlperf.then(|| graph.clone());
    let session = Session::new(ctx.clone(), graph, &options)?;
    let setup_s = setup_start.elapsed().as_secs_f64();
    args.session.report_tuning(&session);
    let (pipelines, pipeline_time) = ctx.pipeline_stats();
    let per_image: usize = session.input_shape().iter().product();
    let input: Vec<f32> = (0..per_image * session.batch)
        .map(|i| ((i % 97) as f32 / 97.0) - 0.5)
        .collect();
    let first_start = Instant::now();
    session.run(&input)?;
    let first_run_s = first_start.elapsed().as_secs_f64();
    session.run(&input)?;
    let gpu_pass = session.pass_time(&input, args.iters.max(1))?;
    let mut cpu: Vec<f64> = Vec::new();
    let mut times: Vec<f64> = (0..args.iters.max(1))
        .map(|_| {
            let c = process_cpu_seconds();
            let t = Instant::now();
            let r = session.run(&input).map(|_| t.elapsed().as_secs_f64());
            let r = r.map_err(anyhow::Error::from);
            if let (Some(a), Some(b)) = (c, process_cpu_seconds()) {
                cpu.push(b - a);
            }
            r
        })
        .collect::<Result<_>>()?;
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let cpu_median = cpu.get(cpu.len() / 2).copied();
    let median = times[times.len() / 2];
    let macs = macs_per_image as f64 * session.batch as f64;
    let gflops = 2.0 * macs / median / 1e9;
    let images_per_s = session.batch as f64 / median;
    let profile = if args.profile {
        let per_layer = session.profile(&input, args.iters.max(1))?;
        let mut rows: Vec<Row> = session
            .dispatches()
            .iter()
            .zip(per_layer)
            .map(|(d, s)| Row {
                layer: d.label.clone(),
                kernel: d.kernel.name().into_owned(),
                family: d.kernel.family(),
                ms: s * 1e3,
                macs: d.cost.macs,
                gflops: if s > 0.0 {
                    2.0 * d.cost.macs as f64 / s / 1e9
                } else {
                    0.0
                },
            })
            .collect();
        rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        Some(rows)
    } else {
        None
    };
    // After the plain figures, so tuning (cached by then) does not count in them.
    let scenarios = match &mlperf_graph {
        Some(g) => Some((
            pollster::block_on(mlperf::single_stream(&ctx, g, args.queries, &options))?,
            pollster::block_on(mlperf::offline(
                &ctx,
                g,
                mlperf::OFFLINE_MAX_BATCH,
                &options,
            ))?,
        )),
        None => None,
    };
    if args.json {
        let mut out = serde_json::json!({
            "adapter": adapter, "precision": args.session.precision.name(), "batch": session.batch, "iters": times.len(),
            "median_ms": median * 1e3, "min_ms": times[0] * 1e3, "max_ms": times[times.len() - 1] * 1e3,
            "images_per_s": images_per_s, "gflops": gflops,
            "setup_s": setup_s, "pipelines": pipelines, "pipeline_build_s": pipeline_time.as_secs_f64(),
            "first_run_s": first_run_s, "dispatches": session.dispatch_count(),
            "cpu_ms_per_pass": cpu_median.map(|c| c * 1e3),
            "activation_bytes": session.activation_bytes, "weight_bytes": session.weight_bytes,
            "gpu_ms_per_pass": gpu_pass.map(|g| g * 1e3),
            "tune": tuning_json(session.tuning()),
        });
        if let Some(rows) = &profile {
            out["profile"] = rows
                .iter()
                .map(|r| serde_json::json!({"layer": r.layer, "kernel": r.kernel, "ms": r.ms, "gflops": r.gflops}))
                .collect();
        }
        if let Some((single, offline)) = &scenarios {
            out["single_stream"] = serde_json::to_value(single)?;
            out["offline"] = serde_json::to_value(offline)?;
        }
        println!("{out}");
    } else {
        println!("adapter          {adapter}");
        println!(
            "batch            {}  ({} dispatches per pass, {} convolutions)",
            session.batch,
            session.dispatch_count(),
            args.session.precision
        );
        println!(
            "latency          median {:.2} ms, min {:.2} ms, max {:.2} ms over {} runs",
            median * 1e3,
            times[0] * 1e3,
            times[times.len() - 1] * 1e3,
            times.len()
        );
        println!("throughput       {images_per_s:.2} images/s, {gflops:.2} GFLOP/s effective");
        if let Some((single, offline)) = &scenarios {
            println!(
                "SingleStream     p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms over {} queries of 1 image",
                single.p50_ms, single.p90_ms, single.p99_ms, single.queries
            );
            let tried: Vec<String> = offline
                .tried
                .iter()
                .map(|t| format!("{}: {:.1}", t.batch, t.images_per_s))
                .collect();
            println!(
                "Offline          {:.2} images/s at batch {} (images/s by batch: {})",
                offline.images_per_s,
                offline.batch,
                tried.join(", ")
            );
        }
        if let Some(g) = gpu_pass {
            // The rest of the wall time is submit, upload, read-back and waiting.
            println!(
                "GPU time         {:.2} ms per pass (timestamps around the pass; {:.0}% of the wall time)",
                g * 1e3,
                100.0 * g / median
            );
        }
        let tuning = session.tuning();
        if tuning.mode == Tune::Off || tuning.shapes.is_empty() {
            println!("tuning           off (the fixed kernel table)");
        } else {
            println!("tuning           {}", tuning.summary());
        }
        if let Some(c) = cpu_median {
            // On CPU adapters this shows how much of the machine the run got: on a busy machine
            // the wall time grows while the CPU time stays put.
            println!(
                "process CPU      {:.2} ms per pass (all threads; {:.2}x the wall time)",
                c * 1e3,
                c / median
            );
        }
        println!(
            "setup            {setup_s:.2} s ({pipelines} pipelines built in {:.2} s), first run {first_run_s:.2} s",
            pipeline_time.as_secs_f64()
        );
        println!(
            "memory           activations {:.2} MB (peak, liveness plan), weights {:.2} MB",
            session.activation_bytes as f64 / 1e6,
            session.weight_bytes as f64 / 1e6
        );
        if args.profile && !tuning.shapes.is_empty() {
            print_tuning(tuning);
        }
        if let Some(rows) = &profile {
            let total: f64 = rows.iter().map(|r| r.ms).sum();
            println!();
            println!(
                "{:<28} {:<22} {:>9} {:>6} {:>8}",
                "layer", "kernel", "ms", "%", "GFLOP/s"
            );
            for r in rows {
                println!(
                    "{:<28} {:<22} {:>9.3} {:>6.1} {:>8.2}",
                    r.layer,
                    r.kernel,
                    r.ms,
                    100.0 * r.ms / total,
                    r.gflops
                );
            }
            println!(
                "{:<28} {:<22} {:>9.3} {:>6.1} {:>8.2}",
                "total (GPU)",
                "",
                total,
                100.0,
                2.0 * macs / (total / 1e3) / 1e9
            );
            // Per kernel family (a Winograd layer's three steps count as one family).
            let mut families: Vec<(&str, f64, u64)> = Vec::new();
            for r in rows {
                match families.iter_mut().find(|f| f.0 == r.family) {
                    Some(f) => {
                        f.1 += r.ms;
                        f.2 += r.macs;
                    }
                    None => families.push((r.family, r.ms, r.macs)),
                }
            }
            families.sort_by(|a, b| b.1.total_cmp(&a.1));
            println!();
            println!(
                "{:<28} {:>9} {:>6} {:>8}",
                "kernel family", "ms", "%", "GFLOP/s"
            );
            for (family, ms, fmacs) in families {
                println!(
                    "{:<28} {:>9.3} {:>6.1} {:>8.2}",
                    family,
                    ms,
                    100.0 * ms / total,
                    2.0 * fmacs as f64 / (ms / 1e3) / 1e9
                );
            }
        }
    }
    Ok(())
}

/// What the tuner chose per shape, with the runners-up.
fn print_tuning(t: &TuneReport) {
    println!();
    println!(
        "{:<34} {:<30} {:>9} {:<30}",
        "conv shape (layers)", "chosen", "ms", "runners-up (ms), default marked *"
    );
    for s in &t.shapes {
        let shape = format!(
            "{}x{}x{} k{}x{}/{} -> {} ({})",
            s.shape.in_c,
            s.shape.input[1],
            s.shape.input[2],
            s.shape.kernel[0],
            s.shape.kernel[1],
            s.shape.stride[0],
            s.shape.output[0],
            s.layers.len()
        );
        let ms = |a| {
            s.timings
                .iter()
                .find(|(b, _)| *b == a)
                .map_or("cached".to_string(), |(_, t)| format!("{:.3}", t * 1e3))
        };
        let others: Vec<String> = s
            .timings
            .iter()
            .filter(|(a, _)| *a != s.chosen)
            .take(3)
            .map(|(a, t)| {
                format!(
                    "{}{} {:.3}",
                    a.describe(),
                    if *a == s.default { "*" } else { "" },
                    t * 1e3
                )
            })
            .collect();
        let default_note = if s.chosen == s.default {
            " (= default)".to_string()
        } else if s.cached {
            String::new()
        } else {
            format!(", default {} {}", s.default.describe(), ms(s.default))
        };
        println!(
            "{:<34} {:<30} {:>9} {}{}",
            shape,
            s.chosen.describe(),
            ms(s.chosen),
            others.join(", "),
            default_note
        );
        if !s.rejected.is_empty() {
            let names: Vec<String> = s.rejected.iter().map(|a| a.describe()).collect();
            println!(
                "{:<34} rejected (wrong output or refused): {}",
                "",
                names.join(", ")
            );
        }
    }
}

/// The tuning report as JSON.
fn tuning_json(t: &TuneReport) -> serde_json::Value {
    serde_json::json!({
        "mode": t.mode.name(),
        "seconds": t.seconds,
        "measured": t.measured,
        "timer": t.timer,
        "shapes": t.shapes.iter().map(|s| serde_json::json!({
            "in_c": s.shape.in_c, "input": s.shape.input, "kernel": s.shape.kernel,
            "stride": s.shape.stride, "pad": s.shape.pad, "output": s.shape.output,
            "batch": s.shape.batch, "layers": s.layers, "default": s.default.describe(),
            "chosen": s.chosen.describe(), "cached": s.cached,
            "timings_ms": s.timings.iter().map(|(a, t)| serde_json::json!([a.describe(), t * 1e3])).collect::<Vec<_>>(),
            "rejected": s.rejected.iter().map(|a| a.describe()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
