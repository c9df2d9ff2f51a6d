//! `resnet-wgpu eval --dataset fashion-mnist [--dir DIR] [--batch N] [--json]`: accuracy of the
//! default model (or --model) on the real test set.

use super::{GpuArgs, SessionArgs, load_model, positive};
use anyhow::{Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use resnet_wgpu::dataset::load_fashion_mnist_test;
use resnet_wgpu::evaluate::top1_predictions;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::model::default::default_model;
use resnet_wgpu::preprocess::Preprocess;
use resnet_wgpu::{Precision, Session, SessionOptions};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct EvalArgs {
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
    /// Model file (default: the embedded model)
    #[arg(long)]
    model: Option<PathBuf>,
    /// Load a model whose weights hold NaN or infinity (refused by default)
    #[arg(long)]
    allow_non_finite: bool,
    /// Images per forward pass (at least 1)
    #[arg(long, default_value_t = 64, value_parser = positive)]
    batch: usize,
    #[command(flatten)]
    session: SessionArgs,
    /// Evaluate only the first N images (at least 1)
    #[arg(long, value_parser = positive)]
    limit: Option<usize>,
    /// Write every prediction (one index a line) to this file (- for standard output)
    #[arg(long)]
    predictions: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    gpu: GpuArgs,
}

pub fn run(args: EvalArgs) -> Result<()> {
    if args.dataset != "fashion-mnist" {
        bail!("unknown dataset '{}' (only fashion-mnist)", args.dataset);
    }
    let model = match &args.model {
        Some(p) => load_model(p, None, args.allow_non_finite)?,
        None => default_model()?,
    };
    let pre = Preprocess::for_model(&model);
    let data = load_fashion_mnist_test(&args.dir)?;
    let n = args.limit.unwrap_or(data.len()).min(data.len());
    let (source, class_names) = (model.source.clone(), model.class_names());
    let graph = model.into_graph_for(pre.output_shape())?;
    resnet_wgpu::classifier::Scores::of(&graph, &source)?;
    let classes = graph.output_shape()[0];
    let names = class_names.unwrap_or_else(|| (0..classes).map(|i| format!("class {i}")).collect());
    let ctx = GpuContext::new_blocking(&args.gpu.options())?;
    let adapter = ctx.describe();
    let batch = args.batch.max(1);
    let session = Session::new(
        ctx,
        graph,
        &SessionOptions {
            batch,
            precision: args.session.precision,
            tune: args.session.tune,
            tune_budget: args.session.tune_budget.0,
            ..Default::default()
        },
    )?;
    args.session.report_tuning(&session);

    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(n as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, eta {eta}")
            .expect("static template"),
    );
    let start = Instant::now();
    let predictions =
        pollster::block_on(top1_predictions(&session, &data, &pre, n, &mut |count| {
            bar.inc(count as u64)
        }))
        .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();

    let mut confusion = vec![vec![0usize; classes]; classes];
    for (i, &p) in predictions.iter().enumerate() {
        confusion[data.labels[i] as usize][p] += 1;
    }
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / n as f64;
    let per_class: Vec<f64> = (0..classes)
        .map(|c| confusion[c][c] as f64 / confusion[c].iter().sum::<usize>().max(1) as f64)
        .collect();
    if let Some(path) = &args.predictions {
        let text: String = predictions.iter().map(|p| format!("{p}\n")).collect();
        super::output::write_output(path, text.as_bytes())?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "dataset": "fashion-mnist", "model": source, "adapter": adapter, "precision": args.session.precision.name(), "images": n,
                "correct": correct, "accuracy": accuracy, "per_class_accuracy": per_class,
                "classes": names, "confusion": confusion, "batch": batch,
                "seconds": seconds, "images_per_s": n as f64 / seconds,
            })
        );
        return Ok(());
    }
    println!("model     {source}");
    println!("adapter   {adapter}");
    if args.session.precision != Precision::F32 {
        println!("precision {} convolutions", args.session.precision);
    }
    println!(
        "accuracy  {:.2}% ({correct} of {n}), {:.1} images/s at batch {batch}",
        accuracy * 100.0,
        n as f64 / seconds
    );
    println!();
    let width = names.iter().map(|s| s.chars().count()).max().unwrap_or(8);
    println!(
        "{:<width$}  accuracy   confusion (rows: true class, columns: predicted)",
        "class"
    );
    for c in 0..classes {
        let row: Vec<String> = confusion[c].iter().map(|v| format!("{v:>5}")).collect();
        println!(
            "{:<width$}  {:>7.2}%  {}",
            names[c],
            per_class[c] * 100.0,
            row.join("")
        );
    }
    Ok(())
}
