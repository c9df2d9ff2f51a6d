//! `resnet-wgpu portability [--json FILE] [--markdown FILE] [--backend ...] [--quick]`

use super::output::write_output;
use anyhow::{Result, bail};
use clap::Args;
use resnet_wgpu::gpu::{ShaderFault, adapter_matches, enumerate, parse_backends};
use resnet_wgpu::kernels::Kernel;
use resnet_wgpu::portability::mlperf::{AccuracyData, AccuracySet};
use resnet_wgpu::portability::{SuiteOptions, check_adapter, report};
use std::path::PathBuf;

#[derive(Args)]
pub struct PortabilityArgs {
    /// Write the full report as JSON
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the report as Markdown
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// auto, vulkan, gl, metal or dx12
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Only adapters whose name, driver or driver version contains this (e.g. "Mesa 25")
    #[arg(long)]
    adapter: Option<String>,
    /// Smaller networks and tensors (for CI)
    #[arg(long)]
    quick: bool,
    /// Skip the second pass that requests only WebGPU's default limits
    #[arg(long)]
    no_default_limits: bool,
    /// Reference fixtures folder (default: this source tree's tests/fixtures, if it exists)
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Skip the MLPerf-style figures (SingleStream latency, Offline throughput, the accuracy rule)
    #[arg(long)]
    no_mlperf: bool,
    /// Fashion-MNIST test set for the accuracy rule (IDX .gz files; default: where Debian's
    /// dataset-fashion-mnist puts them)
    #[arg(
        long,
        env = "RESNET_WGPU_FASHION_MNIST",
        default_value = "/usr/share/datasets/fashion-mnist"
    )]
    fashion_mnist: PathBuf,
    /// Test only: plant a bug in the max-pool kernel (+0.01 on every output), to show the suite catches it
    #[arg(long, hide = true)]
    inject_fault: bool,
}

pub fn run(args: PortabilityArgs) -> Result<()> {
    let backends = parse_backends(Some(&args.backend))?;
    let mut adapters = pollster::block_on(enumerate(backends));
    if let Some(w) = &args.adapter {
        adapters.retain(|a| adapter_matches(&a.get_info(), w));
    }
    if adapters.is_empty() {
        bail!(
            "no GPU adapter found on backends {backends:?}; on Debian install e.g. mesa-vulkan-drivers"
        );
    }
    let fixtures = args.fixtures.clone().or_else(|| {
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures"
        )))
        .filter(|p| p.exists())
    });
    // The reference's predictions are a fixture (PyTorch's, in f32 on the CPU).
    let accuracy = if args.no_mlperf {
        AccuracyData::NotGiven
    } else {
        let predictions = fixtures
            .as_ref()
            .map(|f| f.join("default_model/fmnist_test_preds.npy"));
        match predictions.map(|p| AccuracySet::load(&args.fashion_mnist, &p)) {
            Some(Ok(set)) => AccuracyData::Ready(set.into()),
            Some(Err(e)) => AccuracyData::Unavailable(format!("{e:#}")),
            None => AccuracyData::Unavailable(
                "no reference predictions (pass --fixtures with default_model/fmnist_test_preds.npy)".into(),
            ),
        }
    };
    let opts = SuiteOptions {
        quick: args.quick,
        fixtures,
        mlperf: !args.no_mlperf,
        accuracy,
    };
    let fault = args.inject_fault.then(|| ShaderFault {
        kernel: Kernel::MaxPool,
        find: "output[i] = m;".into(),
        replace: "output[i] = m + 0.01;".into(),
    });
    let mut reports = Vec::new();
    for adapter in &adapters {
        let modes: &[bool] = if args.no_default_limits {
            &[false]
        } else {
            &[false, true]
        };
        for &default_limits in modes {
            let info = adapter.get_info();
            eprintln!(
                "checking {} ({:?}, {}){}",
                info.name,
                info.backend,
                info.driver_info,
                if default_limits {
                    " with WebGPU default limits"
                } else {
                    ""
                }
            );
            reports.push(pollster::block_on(check_adapter(
                adapter,
                default_limits,
                &opts,
                fault.clone(),
                &mut |c| eprintln!("  {}", report::progress_line(c)),
            )));
        }
    }
    let version = resnet_wgpu::VERSION;
    if let Some(p) = &args.json {
        let json = serde_json::json!({"version": version, "adapters": reports});
        write_output(p, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    if let Some(p) = &args.markdown {
        write_output(p, report::markdown(&reports, version).as_bytes())?;
    }
    print!("{}", report::text_summary(&reports));
    let failed = reports.iter().filter(|r| !r.passed()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} adapter runs failed the conformance suite",
            reports.len()
        );
    }
    Ok(())
}
