//! `resnet-wgpu classify [--model FILE] [--arch NAME] [--labels FILE] [--top K] [--json] IMAGE...`

use super::{GpuArgs, ModelArgs, SessionArgs};
use anyhow::{Result, anyhow, bail};
use clap::Args;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::model::default::default_model;
use resnet_wgpu::preprocess::{Preprocess, load_image};
use resnet_wgpu::{Classifier, SessionOptions, model};
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
    /// Preprocessing when the model file does not describe it: imagenet, cifar or fashion-mnist
    #[arg(long)]
    preprocess: Option<String>,
    /// Images per forward pass
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[command(flatten)]
    session: SessionArgs,
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
    let mut names = Vec::new();
    let mut images = Vec::new();
    let mut failures = Vec::new();
    for path in expand(&args.images)? {
        match load_image(&path) {
            Ok(img) => {
                images.push(img);
                names.push(path);
            }
            Err(e) => failures.push(e),
        }
    }
    if images.is_empty() && failures.len() == 1 {
        return Err(failures.remove(0));
    }
    // Each unreadable image gets its own line; the good ones are still classified.
    for e in &failures {
        eprintln!("error: {e:#}");
    }
    if images.is_empty() {
        bail!("none of the {} images could be read", failures.len());
    }
    let ctx = GpuContext::new_blocking(&args.gpu.options())?;
    let batch = args.batch.min(images.len());
    let preprocess = match &args.preprocess {
        Some(name) => Preprocess::named(name)?,
        None => Preprocess::for_model(&model),
    };
    let options = SessionOptions {
        batch,
        precision: args.session.precision,
        ..Default::default()
    };
    let mut classifier = Classifier::with_options(ctx, model, preprocess, &options)?;
    if let Some(path) = &args.labels {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
        classifier
            .set_labels(text.lines().map(str::to_string).collect())
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    }
    let results = classifier.classify(&images, args.top)?;
    if args.json {
        let json: Vec<_> = names
            .iter()
            .zip(&results)
            .map(|(p, top)| serde_json::json!({"image": p.display().to_string(), "top": top}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for (path, top) in names.iter().zip(&results) {
            println!("{}", path.display());
            let width = top
                .iter()
                .map(|p| p.label.chars().count())
                .max()
                .unwrap_or(5);
            for (rank, p) in top.iter().enumerate() {
                println!(
                    "  {}. {:<width$}  {:>6.2}%  (class {})",
                    rank + 1,
                    p.label,
                    p.probability * 100.0,
                    p.index
                );
            }
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} images could not be read",
            failures.len(),
            failures.len() + names.len()
        );
    }
    Ok(())
}
