//! Writes the Fashion-MNIST test set out as 10,000 PNG files (`OUT/CLASS/NNNNN.png`, 28x28 gray),
//! the folder `scripts/bench-folder.sh` classifies to measure `classify FOLDER` against `bench`.
//!
//! cargo run --release --example fashion_mnist_pngs -- OUT [DATASET_DIR]

use anyhow::{Context, Result};
use resnet_wgpu::dataset::FASHION_MNIST_CLASSES;
use resnet_wgpu::dataset::load_fashion_mnist_test;
use std::path::PathBuf;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .context("usage: fashion_mnist_pngs OUT [DATASET_DIR]")?,
    );
    let data = args
        .next()
        .unwrap_or_else(|| "/usr/share/datasets/fashion-mnist".into());
    let set = load_fashion_mnist_test(data.as_ref())?;
    for i in 0..set.len() {
        let class = FASHION_MNIST_CLASSES[usize::from(set.labels[i])].replace('/', "-");
        let dir = out.join(class);
        std::fs::create_dir_all(&dir)?;
        let pixels = set.images[i * set.rows * set.cols..(i + 1) * set.rows * set.cols].to_vec();
        let img = image::GrayImage::from_raw(set.cols as u32, set.rows as u32, pixels)
            .context("image size")?;
        img.save(dir.join(format!("{i:05}.png")))?;
    }
    eprintln!("wrote {} images under {}", set.len(), out.display());
    Ok(())
}
