//! `resnet-wgpu classify [--model FILE] [--arch NAME] [--labels FILE] [--top K] [--json] IMAGE...`

use super::{GpuArgs, ModelArgs};
use anyhow::{Result, anyhow, bail};
use clap::Args;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::model::default::{default_model, imagenet_classes};
use resnet_wgpu::preprocess::{Preprocess, load_image};
use resnet_wgpu::{Session, SessionOptions, model, softmax, top_k};
use std::path::PathBuf;

#[derive(Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Class names, one a line (default: the model's own, or ImageNet's for 1000 classes)
    #[arg(long)]
    labels: Option<PathBuf>,
    /// How many classes to show per image
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Images per forward pass
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Image files or folders of images
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    gpu: GpuArgs,
}

/// Files named on the command line, with folders expanded (sorted, one level).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| anyhow!("{}: cannot list: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            out.extend(entries);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let model = match &args.model.model {
        Some(path) => model::load_file(path, args.model.arch.as_deref())?,
        None => default_model()?,
    };
    let pre = Preprocess::for_model(&model);
    let shape = pre.output_shape();
    let graph = model.graph_for(shape)?;
    let classes = graph.output_shape()[0];
    let labels: Vec<String> = match &args.labels {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?
            .lines()
            .map(str::to_string)
            .collect(),
        None => model.class_names().unwrap_or_else(|| {
            if classes == 1000 {
                imagenet_classes()
            } else {
                Vec::new()
            }
        }),
    };
    if !labels.is_empty() && labels.len() != classes {
        bail!(
            "{} labels given for a model with {classes} classes",
            labels.len()
        );
    }
    let label = |i: usize| {
        labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("class {i}"))
    };

    let mut good = Vec::new();
    let mut input = Vec::new();
    let mut failures = Vec::new();
    for path in expand(&args.images)? {
        match load_image(&path) {
            Ok(img) => {
                input.extend(pre.apply(&img));
                good.push(path);
            }
            Err(e) => failures.push(e),
        }
    }
    if good.is_empty() && failures.len() == 1 {
        return Err(failures.remove(0));
    }
    // Each unreadable image gets its own line; the good ones are still classified.
    for e in &failures {
        eprintln!("error: {e:#}");
    }
    if good.is_empty() {
        bail!("none of the {} images could be read", failures.len());
    }
    let ctx = GpuContext::new_blocking(&args.gpu.options())?;
    let session = Session::new(
        ctx,
        &graph,
        &SessionOptions {
            batch: args.batch.min(good.len()).max(1),
            ..Default::default()
        },
    )?;
    let logits = session.run(&input)?.logits;
    let mut json = Vec::new();
    for (path, row) in good.iter().zip(logits.chunks(classes)) {
        let probs = softmax(row);
        let top = top_k(&probs, args.top.max(1));
        if args.json {
            json.push(serde_json::json!({
                "image": path.display().to_string(),
                "top": top.iter().map(|&i| serde_json::json!({"index": i, "label": label(i), "probability": probs[i], "logit": row[i]})).collect::<Vec<_>>(),
            }));
        } else {
            println!("{}", path.display());
            let width = top
                .iter()
                .map(|&i| label(i).chars().count())
                .max()
                .unwrap_or(5);
            for (rank, &i) in top.iter().enumerate() {
                println!(
                    "  {}. {:<width$}  {:>6.2}%  (class {i})",
                    rank + 1,
                    label(i),
                    probs[i] * 100.0
                );
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} images could not be read",
            failures.len(),
            failures.len() + good.len()
        );
    }
    Ok(())
}
