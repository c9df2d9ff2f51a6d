//! Classify every image in a folder, streaming: decoding runs on threads a few batches ahead of
//! the GPU, each result is printed as soon as its batch has run, and memory stays bounded however
//! many images there are. Files that are not images are reported and skipped.
//!
//! cargo run --release --example classify_folder -- FOLDER [BATCH]

use anyhow::{Context, Result};
use resnet_wgpu::Classifier;
use resnet_wgpu::classifier::StreamOptions;
use resnet_wgpu::gpu::{GpuContext, GpuOptions};
use resnet_wgpu::model::default::default_model;
use resnet_wgpu::preprocess::load_image;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let folder = args
        .next()
        .context("usage: classify_folder FOLDER [BATCH]")?;
    let batch: usize = args.next().map(|b| b.parse()).transpose()?.unwrap_or(32);
    let mut paths: Vec<_> = std::fs::read_dir(&folder)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let classifier = Classifier::new(
        GpuContext::new_blocking(&GpuOptions::default())?,
        default_model()?,
        batch,
    )?;
    let stats = classifier.classify_stream(
        paths,
        |p| load_image(p),
        1,
        StreamOptions {
            batch,
            ..Default::default()
        },
        |path, result| {
            match result {
                Ok(top) => println!(
                    "{:<50} {:<12} {:>6.2}%",
                    path.display(),
                    top[0].label,
                    top[0].probability * 100.0
                ),
                Err(e) => eprintln!("skipped {}: {e:#}", path.display()),
            }
            Ok(())
        },
    )?;
    eprintln!("{} images, {} skipped", stats.images, stats.failed);
    Ok(())
}
