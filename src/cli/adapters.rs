//! `resnet-wgpu adapters [--json]`

use anyhow::Result;
use clap::Args;
use resnet_wgpu::gpu::{AdapterSummary, enumerate, parse_backends};

#[derive(Args)]
pub struct AdaptersArgs {
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// auto, vulkan, gl, metal or dx12
    #[arg(long, default_value = "auto")]
    backend: String,
}

pub fn run(args: AdaptersArgs) -> Result<()> {
    let backends = parse_backends(Some(&args.backend))?;
    let adapters: Vec<AdapterSummary> = pollster::block_on(enumerate(backends))
        .iter()
        .map(AdapterSummary::of)
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&adapters)?);
    } else {
        for (i, a) in adapters.iter().enumerate() {
            println!(
                "[{i}] {} — {} {} ({} {})",
                a.name, a.backend, a.device_type, a.driver, a.driver_info
            );
            let mut limits: Vec<_> = a.limits.iter().collect();
            limits.sort();
            for (k, v) in limits {
                println!("      {k:<40} {v}");
            }
            println!("      features: {}", a.features.join(", "));
            println!("      engine uses: {}", a.engine_uses.line());
        }
    }
    if adapters.is_empty() {
        anyhow::bail!(
            "no GPU adapter found on backends {backends:?}; on Debian install e.g. mesa-vulkan-drivers"
        );
    }
    Ok(())
}
