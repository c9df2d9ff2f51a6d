//! `resnet-wgpu info --arch NAME`: parameters and multiply-accumulates.

use anyhow::Result;
use clap::Args;
use resnet_wgpu::ArchSpec;
use resnet_wgpu::graph::params::SyntheticParams;

#[derive(Args)]
pub struct InfoArgs {
    /// Architecture name
    #[arg(long)]
    arch: String,
    /// Number of classes (default: 1000 for ImageNet nets, 10 for CIFAR nets)
    #[arg(long)]
    classes: Option<usize>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Trainable parameters, MACs per image and the graph, from synthetic weights.
pub fn describe(spec: &ArchSpec, classes: usize) -> Result<(u64, u64, usize)> {
    let mut params = SyntheticParams::new(0, classes);
    let g = spec.build(&mut params, spec.default_input())?;
    Ok((params.trainable, g.macs(), g.nodes.len() - 1))
}

pub fn run(args: InfoArgs) -> Result<()> {
    let spec = ArchSpec::parse(&args.arch)?;
    let classes = args.classes.unwrap_or_else(|| spec.default_classes());
    let (params, macs, layers) = describe(&spec, classes)?;
    let [c, h, w] = spec.default_input();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"arch": spec.name(), "parameters": params, "macs": macs, "input": [c, h, w], "classes": classes, "layers": layers})
        );
    } else {
        println!("architecture   {}", spec.name());
        println!("input          {c}x{h}x{w}, {classes} classes");
        println!("parameters     {params} ({:.2} M)", params as f64 / 1e6);
        println!(
            "multiply-adds  {macs} ({:.2} G per image)",
            macs as f64 / 1e9
        );
        println!("graph nodes    {layers}");
    }
    Ok(())
}
