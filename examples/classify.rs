//! Classify one image with the embedded default model (or a model file) on the best adapter.
//!
//! cargo run --release --example classify -- assets/samples/ankle_boot.png [model.safetensors]

use anyhow::{Context, Result};
use resnet_wgpu::Classifier;
use resnet_wgpu::gpu::{GpuContext, GpuOptions};
use resnet_wgpu::model::{default::default_model, load_file};
use resnet_wgpu::preprocess::load_image;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let image_path = args.next().context("usage: classify IMAGE [MODEL]")?;
    let model = match args.next() {
        Some(path) => load_file(path.as_ref(), None)?,
        None => default_model()?,
    };
    let ctx = GpuContext::new_blocking(&GpuOptions::default())?;
    println!("adapter: {}", ctx.describe());
    let classifier = Classifier::new(ctx, model, 1)?;
    let image = load_image(image_path.as_ref())?;
    for p in &classifier.classify(&[image], 5)?[0] {
        println!("{:>6.2}%  {}", p.probability * 100.0, p.label);
    }
    Ok(())
}
