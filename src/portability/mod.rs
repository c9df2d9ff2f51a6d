//! The GPU portability suite: does an adapter compute our kernels and whole ResNets correctly,
//! how far from the CPU reference, and how fast. Runs natively per adapter (`resnet-wgpu
//! portability`) and in the browser on its WebGPU adapter.

#[doc(hidden)]
pub mod cases;
pub mod compare;
pub mod mlperf;
pub mod report;

use crate::gpu::GpuContext;
use crate::reference::run_graph;
use crate::session::{Session, SessionOptions};
use crate::tensor::SplitMix64;
use cases::Case;
use compare::{Errors, compare};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use web_time::Instant;

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Status {
    /// Within tolerance.
    Pass,
    /// Out of tolerance, or could not run.
    Fail,
    /// The check does not apply to this adapter or engine (said why in `detail`).
    NotApplicable,
}

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// kernel, limits, network, fixture or f16.
    pub category: String,
    /// What was checked, e.g. "conv 3->8 9x7 k3".
    pub name: String,
    /// The verdict.
    pub status: Status,
    /// How far the GPU was from the reference (when it ran).
    pub errors: Option<Errors>,
    /// The tolerance applied, as text.
    pub tolerance: String,
    /// Median GPU time of a run (upload, dispatches, read-back), milliseconds.
    pub time_ms: Option<f64>,
    /// Why it failed, why it does not apply, or a note (e.g. a batch split).
    pub detail: Option<String>,
}

/// Everything measured on one adapter (or one adapter under one set of limits).
#[derive(Clone, Debug, Serialize)]
pub struct AdapterReport {
    /// The adapter's name.
    pub name: String,
    /// Its backend (Vulkan, Gl, BrowserWebGpu, ...).
    pub backend: String,
    /// Its device type (DiscreteGpu, Cpu, ...).
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// "adapter" (its own limits) or "WebGPU default".
    pub limits: String,
    /// Set when the adapter could not even open a device.
    pub init_error: Option<String>,
    /// What the engine used of the opened device (subgroups, f16, timestamps, cooperative
    /// matrices): why this adapter took the kernels it took. `None` when no device opened.
    pub engine_uses: Option<crate::gpu::EngineCapabilities>,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
    /// MLPerf-style latency, throughput and accuracy on the default model (the adapter-limits
    /// run only: WebGPU's default limits change nothing the default model needs).
    pub mlperf: Option<mlperf::MlPerf>,
}

impl AdapterReport {
    /// Whether the adapter opened and no check failed.
    pub fn passed(&self) -> bool {
        self.init_error.is_none() && self.checks.iter().all(|c| c.status != Status::Fail)
    }
}

/// What the suite runs.
#[derive(Clone, Default)]
pub struct SuiteOptions {
    /// Smaller networks and tensors, for CI.
    pub quick: bool,
    /// Where the reference fixtures live (the repository's tests/fixtures), if anywhere.
    pub fixtures: Option<PathBuf>,
    /// Measure the MLPerf-style figures (see [`mlperf`]) on runs with the adapter's limits.
    pub mlperf: bool,
    /// The test set and reference predictions of the accuracy rule.
    pub accuracy: mlperf::AccuracyData,
}

/// Runs a case on the GPU (median of `runs` timed runs) and on the CPU reference.
async fn run_case(ctx: &Arc<GpuContext>, case: &Case, category: &str, runs: usize) -> Check {
    let [c, h, w] = case.graph.input_shape();
    let mut input = SplitMix64(7).normal_vec(case.batch * c * h * w, 1.0);
    if case.nan_input {
        input[0] = f32::NAN;
    }
    let tolerance = format!("atol {:.0e} + rtol {:.0e}", case.atol, case.rtol);
    let gpu = async {
        let session = Session::new_async(
            ctx.clone(),
            case.graph.clone(),
            &SessionOptions {
                batch: case.batch,
                optimize: case.optimize,
                precision: case.precision,
                ..Default::default()
            },
        )
        .await?;
        let mut times = Vec::new();
        let mut out = Vec::new();
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            out = session.run_async(&input).await?.logits;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        anyhow::Ok((out, times[times.len() / 2], session.batch))
    };
    match gpu.await {
        Ok((got, ms, chunk)) => {
            let want = run_graph(&case.graph, &input, case.batch).swap_remove(case.graph.output);
            let errors = compare(&got, &want, case.atol, case.rtol);
            let detail = (chunk < case.batch).then(|| format!("ran in chunks of {chunk}"));
            Check {
                category: category.into(),
                name: case.name.clone(),
                status: if errors.violations == 0 {
                    Status::Pass
                } else {
                    Status::Fail
                },
                errors: Some(errors),
                tolerance,
                time_ms: Some(ms),
                detail: if errors.violations > 0 {
                    Some(format!("{} values out of tolerance", errors.violations))
                } else {
                    detail
                },
            }
        }
        Err(e) => Check {
            category: category.into(),
            name: case.name.clone(),
            status: Status::Fail,
            errors: None,
            tolerance,
            time_ms: None,
            detail: Some(format!("{e:#}")),
        },
    }
}

/// Checks a reference fixture (model + input + ONNX Runtime logits) if it is there. The model
/// and input are `NAME.safetensors` and `NAME.input.npy` where the folder has them; the
/// repository's ResNet-18 has neither (they are seeded: tests/fixtures/resnet18/README.md).
#[cfg(not(target_arch = "wasm32"))]
async fn run_fixture(ctx: &Arc<GpuContext>, dir: &std::path::Path, name: &str) -> Check {
    use crate::model::{self, npy::read_npy};
    let result = async {
        let read = |suffix: &str| -> anyhow::Result<crate::Tensor> {
            let p = dir.join(format!("{name}/{name}.{suffix}.npy"));
            Ok(read_npy(&std::fs::read(&p)?, &p.display().to_string())?)
        };
        let weights = dir.join(format!("{name}/{name}.safetensors"));
        let (m, input) = if !weights.exists() && name == "resnet18" {
            model::seeded::resnet18_fixture()?
        } else {
            (model::load_file(&weights, None)?, read("input")?)
        };
        let want = read("logits_ort")?;
        let graph = m.into_graph_for([input.shape[1], input.shape[2], input.shape[3]])?;
        let session = Session::new_async(
            ctx.clone(),
            graph,
            &SessionOptions {
                batch: input.shape[0],
                ..Default::default()
            },
        )
        .await?;
        let t = Instant::now();
        let got = session.run_async(&input.data).await?.logits;
        anyhow::Ok((
            compare(&got, &want.data, 1e-3, 0.0),
            t.elapsed().as_secs_f64() * 1e3,
        ))
    };
    let (status, errors, time_ms, detail) = match result.await {
        Ok((e, ms)) => (
            if e.violations == 0 {
                Status::Pass
            } else {
                Status::Fail
            },
            Some(e),
            Some(ms),
            None,
        ),
        Err(e) => (Status::Fail, None, None, Some(format!("{e:#}"))),
    };
    Check {
        category: "fixture".into(),
        name: format!("{name} vs ONNX Runtime logits"),
        status,
        errors,
        tolerance: "atol 1e-3".into(),
        time_ms,
        detail,
    }
}

/// The largest storage binding whose split case (a batch 1.5 times the binding, plus its
/// reference output) the host can hold: wasm32 addresses 4 GB at most.
const WASM_SPLIT_MAX_BINDING: u64 = 512 << 20;

/// The whole suite on one adapter context. `on_check` sees each check as it finishes (a full
/// run takes minutes on a software adapter; callers show progress with it).
pub async fn run_suite(
    ctx: &Arc<GpuContext>,
    opts: &SuiteOptions,
    on_check: &mut dyn FnMut(&Check),
) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut record = |check: Check| {
        on_check(&check);
        checks.push(check);
    };
    let max_binding = ctx.max_binding();
    match cases::kernel_cases(opts.quick, max_binding) {
        Ok(list) => {
            for case in &list {
                record(run_case(ctx, case, "kernel", 3).await);
            }
        }
        Err(e) => record(error_check("kernel", "building the kernel cases", e)),
    }
    if cfg!(target_arch = "wasm32") && max_binding > WASM_SPLIT_MAX_BINDING {
        record(unmeasured(
            "limits",
            "a batch split to fit one binding",
            Status::NotApplicable,
            format!(
                "the adapter's {} MB binding is too large to exceed from wasm32's 4 GB memory; the WebGPU-default-limits run checks the split",
                max_binding >> 20
            ),
        ));
    } else {
        record(run_case(ctx, &cases::split_case(max_binding), "limits", 1).await);
    }
    match cases::long_loop_cases(opts.quick) {
        Ok(list) => {
            for case in &list {
                record(run_case(ctx, case, "long loops", 1).await);
            }
        }
        Err(e) => record(error_check("long loops", "building the long-loop cases", e)),
    }
    match cases::nan_case() {
        Ok(case) => record(run_case(ctx, &case, "nan", 1).await),
        Err(e) => record(error_check("nan", "building the NaN case", e)),
    }
    match cases::network_cases(opts.quick) {
        Ok(list) => {
            for case in &list {
                record(run_case(ctx, case, "network", 1).await);
            }
        }
        Err(e) => record(error_check("network", "building the networks", e)),
    }
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(dir) = &opts.fixtures {
        for name in ["resnet20", "resnet18"] {
            if dir.join(format!("{name}/{name}.logits_ort.npy")).exists() {
                record(run_fixture(ctx, dir, name).await);
            }
        }
    }
    if ctx.features.contains(wgpu::Features::SHADER_F16) {
        match cases::f16_cases(opts.quick, max_binding) {
            Ok(list) => {
                for case in &list {
                    record(run_case(ctx, case, "f16", 1).await);
                }
            }
            Err(e) => record(error_check("f16", "building the f16 cases", e)),
        }
    } else {
        record(unmeasured(
            "f16",
            "convolutions and networks in f16",
            Status::NotApplicable,
            "adapter lacks SHADER_F16".into(),
        ));
    }
    checks
}

/// A check that measured nothing: one that could not run (Fail), or does not apply here.
fn unmeasured(category: &str, name: &str, status: Status, detail: String) -> Check {
    Check {
        category: category.into(),
        name: name.into(),
        status,
        errors: None,
        tolerance: "-".into(),
        time_ms: None,
        detail: Some(detail),
    }
}

fn error_check(category: &str, name: &str, e: anyhow::Error) -> Check {
    unmeasured(category, name, Status::Fail, format!("{e:#}"))
}

/// Opens `adapter` (with its own limits, or WebGPU's defaults) and runs the suite, calling
/// `on_check` after each check.
pub async fn check_adapter(
    adapter: &wgpu::Adapter,
    webgpu_default_limits: bool,
    opts: &SuiteOptions,
    fault: Option<crate::gpu::ShaderFault>,
    on_check: &mut dyn FnMut(&Check),
) -> AdapterReport {
    let info = adapter.get_info();
    let mut report = AdapterReport {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
        limits: if webgpu_default_limits {
            "WebGPU default".into()
        } else {
            "adapter".into()
        },
        init_error: None,
        engine_uses: None,
        checks: Vec::new(),
        mlperf: None,
    };
    let ctx = match GpuContext::from_adapter(adapter, webgpu_default_limits).await {
        Ok(ctx) => ctx,
        Err(e) => {
            report.init_error = Some(format!("{e:#}"));
            return report;
        }
    };
    report.engine_uses = Some(crate::gpu::EngineCapabilities::from_parts(
        ctx.features,
        &ctx.info,
        &adapter.cooperative_matrix_properties(),
    ));
    if let Some(f) = fault
        && let Err(e) = ctx.inject_fault(f)
    {
        report.init_error = Some(format!("{e:#}"));
        return report;
    }
    report.checks = run_suite(&ctx, opts, on_check).await;
    // Natively only: the figures need the embedded default model, which would add its 1.1 MB to
    // the browser's .wasm (the page loads the model file instead); the page shows "-".
    #[cfg(not(target_arch = "wasm32"))]
    if opts.mlperf && !webgpu_default_limits {
        let mut record = |check: Check| {
            on_check(&check);
            report.checks.push(check);
        };
        report.mlperf = Some(mlperf::measure(&ctx, opts.quick, &opts.accuracy, &mut record).await);
    }
    report
}
