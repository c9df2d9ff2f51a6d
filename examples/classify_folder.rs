//! Classify every image in a folder in batches, skipping (and reporting) files that are not images.
//!
//! cargo run --release --example classify_folder -- FOLDER [BATCH]

use anyhow::{Context, Result};
use resnet_wgpu::Classifier;
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
    for chunk in paths.chunks(batch) {
        let mut images = Vec::new();
        let mut names = Vec::new();
        for p in chunk {
            match load_image(p) {
                Ok(img) => {
                    images.push(img);
                    names.push(p);
                }
                Err(e) => eprintln!("skipped: {e:#}"),
            }
        }
        for (name, top) in names.iter().zip(classifier.classify(&images, 1)?) {
            println!(
                "{:<50} {:<12} {:>6.2}%",
                name.display(),
                top[0].label,
                top[0].probability * 100.0
            );
        }
    }
    Ok(())
}
