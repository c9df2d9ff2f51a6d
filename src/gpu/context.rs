//! Picking an adapter (by backend and name) and opening a device with the adapter's real limits.

use crate::error::{Error, Result};
use crate::kernels::Kernel;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How the user asks for an adapter: `--backend` and `--adapter SUBSTRING`.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// auto, vulkan, gl, metal, dx12 or webgpu. `None` or "auto" means every backend
    /// (or `WGPU_BACKEND` if set).
    pub backend: Option<String>,
    /// Case-insensitive substring of the adapter name, driver or driver version (or
    /// `WGPU_ADAPTER_NAME` if unset).
    pub adapter: Option<String>,
    /// Request only the WebGPU specification's default limits instead of the adapter's.
    pub webgpu_default_limits: bool,
}

/// Parses a `--backend` value.
pub fn parse_backends(name: Option<&str>) -> Result<wgpu::Backends> {
    Ok(match name.map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("auto") | Some("all") => match std::env::var("WGPU_BACKEND") {
            // wgpu ignores names it does not know, so a typo selected no backend at all and
            // the error said "no adapter on backend auto".
            Ok(v) if wgpu::Backends::from_comma_list(&v).is_empty() => {
                return Err(Error::InvalidInput(format!(
                    "WGPU_BACKEND={v:?} names no backend (expected vulkan, gl, metal or dx12, comma-separated); fix or unset it"
                )));
            }
            _ => wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all()),
        },
        Some("vulkan") | Some("vk") => wgpu::Backends::VULKAN,
        Some("gl") | Some("gles") | Some("opengl") => wgpu::Backends::GL,
        Some("metal") | Some("mtl") => wgpu::Backends::METAL,
        Some("dx12") | Some("d3d12") => wgpu::Backends::DX12,
        Some("webgpu") | Some("browser") => wgpu::Backends::BROWSER_WEBGPU,
        Some(other) => {
            return Err(Error::InvalidInput(format!(
                "unknown backend '{other}' (expected auto, vulkan, gl, metal, dx12 or webgpu)"
            )));
        }
    })
}

/// A wgpu instance on `backends`, honouring wgpu's environment variables (WGPU_BACKEND and friends), without a display.
pub fn make_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// What a user wants to know about an adapter.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    /// The adapter's name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// Vulkan, Metal, Dx12, Gl or BrowserWebGpu.
    pub backend: String,
    /// DiscreteGpu, IntegratedGpu, VirtualGpu, Cpu or Other.
    pub device_type: String,
    /// The driver's name.
    pub driver: String,
    /// The driver's version and details.
    pub driver_info: String,
    /// PCI vendor id (0 where there is none).
    pub vendor: u32,
    /// PCI device id.
    pub device: u32,
    /// Every wgpu feature the adapter offers.
    pub features: Vec<String>,
    /// The limits that matter to this engine, by wgpu's names.
    pub limits: HashMap<String, u64>,
    /// What the engine uses of it (subgroups, f16, timestamps, cooperative matrices).
    pub engine_uses: super::EngineCapabilities,
}

impl AdapterSummary {
    /// The summary of one adapter.
    pub fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let l = adapter.limits();
        let limits = [
            (
                "max_storage_buffer_binding_size",
                l.max_storage_buffer_binding_size,
            ),
            ("max_buffer_size", l.max_buffer_size),
            (
                "max_storage_buffers_per_shader_stage",
                l.max_storage_buffers_per_shader_stage as u64,
            ),
            (
                "max_compute_workgroup_size_x",
                l.max_compute_workgroup_size_x as u64,
            ),
            (
                "max_compute_invocations_per_workgroup",
                l.max_compute_invocations_per_workgroup as u64,
            ),
            (
                "max_compute_workgroups_per_dimension",
                l.max_compute_workgroups_per_dimension as u64,
            ),
            (
                "max_compute_workgroup_storage_size",
                l.max_compute_workgroup_storage_size as u64,
            ),
            (
                "max_uniform_buffer_binding_size",
                l.max_uniform_buffer_binding_size,
            ),
            ("subgroup_min_size", info.subgroup_min_size as u64),
            ("subgroup_max_size", info.subgroup_max_size as u64),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver,
            driver_info: info.driver_info,
            vendor: info.vendor,
            device: info.device,
            features: adapter
                .features()
                .iter_names()
                .map(|(n, _)| n.to_string())
                .collect(),
            limits,
            engine_uses: super::EngineCapabilities::of(adapter),
        }
    }
}

/// Every adapter on the chosen backends.
pub async fn enumerate(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    make_instance(backends).enumerate_adapters(backends).await
}

fn preference(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan
        | wgpu::Backend::Metal
        | wgpu::Backend::Dx12
        | wgpu::Backend::BrowserWebGpu => 0,
        _ => 1,
    };
    (device, backend)
}

/// Whether `wanted` (any case) is part of the adapter's name, driver or driver version: two
/// lavapipes of different Mesa releases share one name ("llvmpipe (LLVM 15.0.6, 256 bits)"), so
/// `--adapter "Mesa 25"` must read the driver version to pick one.
pub fn adapter_matches(info: &wgpu::AdapterInfo, wanted: &str) -> bool {
    let wanted = wanted.to_lowercase();
    [&info.name, &info.driver, &info.driver_info]
        .iter()
        .any(|field| field.to_lowercase().contains(&wanted))
}

/// An adapter as error messages list it: name, backend and driver version.
fn listed(info: &wgpu::AdapterInfo) -> String {
    if info.driver_info.is_empty() {
        format!("{} ({:?})", info.name, info.backend)
    } else {
        format!("{} ({:?}, {})", info.name, info.backend, info.driver_info)
    }
}

/// Picks the adapter the options ask for: the best device type, native APIs before GL, and a name
/// filter matched here (wgpu panics on a `WGPU_ADAPTER_NAME` that matches nothing).
pub async fn select_adapter(opts: &GpuOptions) -> Result<wgpu::Adapter> {
    let backends = parse_backends(opts.backend.as_deref())?;
    let wanted = opts
        .adapter
        .clone()
        .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok());
    let mut adapters = if cfg!(target_arch = "wasm32") {
        let instance = make_instance(backends);
        let req = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        instance.request_adapter(&req).await.into_iter().collect()
    } else {
        enumerate(backends).await
    };
    let all: Vec<String> = adapters.iter().map(|a| listed(&a.get_info())).collect();
    if let Some(w) = &wanted {
        adapters.retain(|a| adapter_matches(&a.get_info(), w));
    }
    adapters.sort_by_key(|a| preference(&a.get_info()));
    if adapters.is_empty() && all.is_empty() && backends != wgpu::Backends::all() {
        // A backend that this platform or build lacks (dx12 on Linux): say what there is.
        let elsewhere: Vec<String> = if cfg!(target_arch = "wasm32") {
            Vec::new()
        } else {
            enumerate(wgpu::Backends::all())
                .await
                .iter()
                .map(|a| listed(&a.get_info()))
                .collect()
        };
        if !elsewhere.is_empty() {
            let asked = match opts.backend.as_deref() {
                None | Some("auto") | Some("all") => match std::env::var("WGPU_BACKEND") {
                    Ok(v) => format!("{v} (from WGPU_BACKEND; unset it to use any)"),
                    Err(_) => "auto".into(),
                },
                Some(b) => format!("{b} (choose another with --backend)"),
            };
            return Err(Error::NoAdapter(format!(
                "no adapter on backend {asked}; this machine has: {}",
                elsewhere.join(", ")
            )));
        }
    }
    adapters.into_iter().next().ok_or_else(|| {
        Error::NoAdapter(if all.is_empty() && cfg!(target_arch = "wasm32") {
            String::from(
                "the browser offers no WebGPU adapter (WebGPU disabled, or no usable GPU); enable WebGPU (Chrome: chrome://flags/#enable-unsafe-webgpu, Firefox: dom.webgpu.enabled) or try another browser"
            )
        } else if all.is_empty() {
            format!(
                "no GPU adapter found on backends {backends:?}; on Debian install a driver, e.g. `apt-get install mesa-vulkan-drivers` (software Vulkan)"
            )
        } else {
            format!(
                "no adapter matches '{}'; available: {}",
                wanted.unwrap_or_default(),
                all.join(", ")
            )
        })
    })
}

/// A clock where there is one (not in the browser's wasm).
fn now() -> Option<std::time::Instant> {
    if cfg!(target_arch = "wasm32") {
        None
    } else {
        Some(std::time::Instant::now())
    }
}

/// An open device plus the pipelines built on it so far.
pub struct GpuContext {
    /// The device, opened with the adapter's limits (or the ones asked for).
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The adapter it was opened on.
    pub info: wgpu::AdapterInfo,
    /// The limits the device was opened with.
    pub limits: wgpu::Limits,
    /// The optional features enabled on it (timestamps, f16, subgroups where offered).
    pub features: wgpu::Features,
    pipelines: Mutex<HashMap<Kernel, Arc<wgpu::ComputePipeline>>>,
    /// Time spent building pipelines so far.
    pipeline_time: Mutex<std::time::Duration>,
    /// Why the device was lost, once it has been (set by wgpu's device-lost callback).
    lost: Arc<Mutex<Option<String>>>,
    /// Test-only fault injection: a text substitution applied to one kernel's source, so the
    /// portability suite can prove it catches a wrong kernel.
    fault: Mutex<Option<ShaderFault>>,
}

/// A deliberate bug planted in one kernel (see [`GpuContext::inject_fault`]).
#[derive(Clone, Debug)]
pub struct ShaderFault {
    /// The kernel to plant it in.
    pub kernel: Kernel,
    /// Text of its source to replace (must occur).
    pub find: String,
    /// What replaces the first occurrence.
    pub replace: String,
}

impl GpuContext {
    /// Opens the adapter that `opts` selects, with its real limits (not wgpu's defaults).
    pub async fn new(opts: &GpuOptions) -> Result<Arc<Self>> {
        let adapter = select_adapter(opts).await?;
        Self::from_adapter(&adapter, opts.webgpu_default_limits).await
    }

    /// Blocking form of [`GpuContext::new`] for native programs.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(opts: &GpuOptions) -> Result<Arc<Self>> {
        pollster::block_on(Self::new(opts))
    }

    /// Opens `adapter` with its own limits, or with only WebGPU's default limits.
    pub async fn from_adapter(
        adapter: &wgpu::Adapter,
        webgpu_default_limits: bool,
    ) -> Result<Arc<Self>> {
        let limits = if webgpu_default_limits {
            // The WebGPU specification's defaults, never more than the adapter has.
            wgpu::Limits::defaults().or_worse_values_from(&adapter.limits())
        } else {
            adapter.limits()
        };
        Self::with_limits(adapter, limits).await
    }

    /// Opens `adapter` with exactly `limits` (each no better than the adapter's): how tests and
    /// the portability suite see what a smaller GPU would do.
    // In the browser wgpu's handles are neither Send nor Sync; the Arc is only shared on one thread.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub async fn with_limits(adapter: &wgpu::Adapter, limits: wgpu::Limits) -> Result<Arc<Self>> {
        let info = adapter.get_info();
        let optional = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP;
        let features = adapter.features() & optional;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("resnet-wgpu"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| {
                Error::NoAdapter(format!(
                    "cannot open a device on adapter '{}': {e}",
                    info.name
                ))
            })?;
        // wgpu's default for an error nobody captured is a panic. Errors during planning and runs
        // are captured by error scopes; anything else is logged, never a crash.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            log::error!("GPU error: {}", format!("{e}").replace('\n', " "));
        }));
        let lost = Arc::new(Mutex::new(None));
        let on_lost = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            let why = format!(
                "{reason:?}{}",
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            );
            log::warn!("the GPU device was lost ({why})");
            if let Ok(mut l) = on_lost.lock() {
                *l = Some(why);
            }
        });
        Ok(Arc::new(Self {
            device,
            queue,
            info,
            limits,
            features,
            pipelines: Mutex::new(HashMap::new()),
            lost,
            fault: Mutex::new(None),
            pipeline_time: Mutex::new(std::time::Duration::ZERO),
        }))
    }

    /// One line naming the adapter, for logs and reports.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, {})",
            self.info.name, self.info.backend, self.info.device_type, self.info.driver_info
        )
    }

    /// Plants a bug in one kernel for testing the conformance suite: every pipeline of `kernel`
    /// built afterwards uses its source with `find` replaced by `replace`. Fails if `find` does
    /// not occur (so a rewritten shader cannot silently disable the fault).
    pub fn inject_fault(&self, fault: ShaderFault) -> Result<()> {
        if !fault.kernel.source().contains(&fault.find) {
            return Err(Error::InvalidInput(format!(
                "fault injection: '{}' does not occur in {}.wgsl",
                fault.find,
                fault.kernel.name()
            )));
        }
        self.pipelines
            .lock()
            .expect("pipeline cache poisoned")
            .remove(&fault.kernel);
        *self.fault.lock().expect("fault lock poisoned") = Some(fault);
        Ok(())
    }

    fn source_of(&self, kernel: Kernel) -> String {
        match &*self.fault.lock().expect("fault lock poisoned") {
            Some(f) if f.kernel == kernel => kernel.source().replacen(&f.find, &f.replace, 1),
            _ => kernel.source(),
        }
    }

    /// The pipeline of `kernel`, built on first use and shared afterwards.
    pub fn pipeline(&self, kernel: Kernel) -> Arc<wgpu::ComputePipeline> {
        let mut cache = self.pipelines.lock().expect("pipeline cache poisoned");
        cache
            .entry(kernel)
            .or_insert_with(|| {
                let start = now();
                let name = kernel.name();
                let module = self
                    .device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(&name),
                        source: wgpu::ShaderSource::Wgsl(self.source_of(kernel).into()),
                    });
                let pipeline =
                    self.device
                        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                            label: Some(&name),
                            layout: None,
                            module: &module,
                            entry_point: Some("main"),
                            compilation_options: Default::default(),
                            cache: None,
                        });
                if let Some(start) = start {
                    *self.pipeline_time.lock().expect("timer poisoned") += start.elapsed();
                }
                Arc::new(pipeline)
            })
            .clone()
    }

    /// Pipelines built so far, and the time spent building them (shader translation and the
    /// driver's pipeline creation; some drivers, lavapipe among them, compile to machine code
    /// only at the first dispatch).
    pub fn pipeline_stats(&self) -> (usize, std::time::Duration) {
        let count = self
            .pipelines
            .lock()
            .expect("pipeline cache poisoned")
            .len();
        (count, *self.pipeline_time.lock().expect("timer poisoned"))
    }

    /// Whether the adapter runs compute in subgroups of exactly 8 lanes (lavapipe on AVX), which the
    /// tuned convolutions exploit to share weights between lanes.
    pub fn subgroup8(&self) -> bool {
        super::subgroup8(self.features, &self.info)
    }

    /// Where timestamps can be written on this device.
    pub fn timestamps(&self) -> super::Timestamps {
        super::Timestamps::of(self.features)
    }

    /// Whether per-dispatch timestamps can be written inside a compute pass (for profiles).
    pub fn can_profile(&self) -> bool {
        self.timestamps() == super::Timestamps::InsidePasses
    }

    /// Why the device was lost, if it was. A lost device stays lost: make a new context (and
    /// new sessions on it) to carry on.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// Fails with a clear message once the device is lost.
    pub fn check_alive(&self) -> Result<()> {
        match self.lost() {
            Some(reason) => Err(Error::DeviceLost {
                adapter: self.info.name.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Largest storage buffer one binding may cover.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }
}
