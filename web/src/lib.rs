//! resnet-wgpu in the browser: the engine compiled to wasm32 on wgpu's WebGPU backend.
//!
//! The page (`web/static/`) runs this module inside a Web Worker (`worker.js`), so parsing a
//! 100 MB model, uploading its weights and compiling pipelines never blocks the page. Every entry
//! point is async and returns JSON text (or a `Float32Array` of logits for the test hook); errors
//! come back as JS exceptions with one readable line.
//!
//! Natively this crate is empty: it exists only for `wasm32-unknown-unknown` (see `web/build.sh`).
#![cfg(target_arch = "wasm32")]

use resnet_wgpu::error::{Error, Result};
use resnet_wgpu::gpu::{GpuContext, GpuOptions, select_adapter};
use resnet_wgpu::model::npy::read_npy;
use resnet_wgpu::portability::{self, SuiteOptions, check_adapter};
use resnet_wgpu::preprocess::{Preprocess, decode_image};
use resnet_wgpu::tensor::split_batch;
use resnet_wgpu::{Classifier, Prediction, Session, SessionOptions, Tune, model};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: exists on windows and workers alike.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn now() -> f64;
}

thread_local! {
    static CONTEXT: RefCell<Option<Arc<GpuContext>>> = const { RefCell::new(None) };
    static LOADED: RefCell<Option<Rc<Loaded>>> = const { RefCell::new(None) };
}

/// GPU errors no error scope caught (the device's uncaptured-error handler), reported by the next
/// call instead of being lost in the console.
static GPU_ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The model the page classifies with.
struct Loaded {
    classifier: Classifier,
    info: ModelInfo,
}

#[derive(Clone, Serialize)]
struct ModelInfo {
    name: String,
    arch: String,
    classes: usize,
    input: [usize; 3],
    parameters: usize,
    macs: u64,
    dispatches: usize,
    weight_bytes: u64,
    activation_bytes: u64,
    parse_ms: f64,
    plan_ms: f64,
    warmup_ms: f64,
    /// Tuning, part of `plan_ms`: its time, candidates timed, distinct conv shapes, and how
    /// many of those came from the cache.
    tune_ms: f64,
    tune_measured: usize,
    tune_shapes: usize,
    tune_cached: usize,
    /// Shapes the tuning budget left for a later visit.
    tune_deferred: usize,
}

#[derive(Serialize)]
struct AdapterInfo {
    name: String,
    backend: String,
    device_type: String,
    driver: String,
    driver_info: String,
    max_storage_buffer_binding_size: u64,
    max_buffer_size: u64,
    max_compute_workgroups_per_dimension: u32,
    features: Vec<String>,
}

#[derive(Serialize)]
struct Classification {
    predictions: Vec<Prediction>,
    width: u32,
    height: u32,
    decode_ms: f64,
    preprocess_ms: f64,
    forward_ms: f64,
}

#[derive(Serialize)]
struct Bench {
    runs: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&format!("resnet-wgpu panicked: {info}").into());
    }));
    if log::set_logger(&ConsoleLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// Forwards the library's warnings (e.g. a batch split to fit the adapter) to the console.
struct ConsoleLogger;

impl log::Log for ConsoleLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn && m.target().starts_with("resnet_wgpu")
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let text = format!("{}: {}", r.level(), r.args());
            if r.level() == log::Level::Error {
                web_sys::console::error_1(&text.into());
            } else {
                web_sys::console::warn_1(&text.into());
            }
        }
    }
    fn flush(&self) {}
}

/// A JS exception for an engine error: its one-line message, and as `name` the error's kind
/// (`DeviceLost`, `AdapterLimit`, `InvalidModel`, ...), so that the page tells them apart
/// without reading the text.
fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string().replace('\n', " "));
    err.set_name(e.kind());
    err.into()
}

fn json<T: Serialize>(value: &T) -> Result<String, JsValue> {
    serde_json::to_string(value).map_err(|e| js_sys::Error::new(&e.to_string()).into())
}

/// Fails with the first GPU error that escaped the error scopes since the last check.
fn check_gpu_errors() -> Result<()> {
    let mut errors = GPU_ERRORS.lock().expect("error list poisoned");
    if errors.is_empty() {
        return Ok(());
    }
    let first = errors.remove(0);
    let more = errors.len();
    errors.clear();
    Err(Error::GpuRejected(if more > 0 {
        format!("the GPU reported an error: {first} (and {more} more)")
    } else {
        format!("the GPU reported an error: {first}")
    }))
}

/// The adapter's name as wgpu reports it, else as the page read it from `GPUAdapterInfo`.
fn adapter_name(wgpu_name: &str, hint: &str) -> String {
    [wgpu_name, hint]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or("(unnamed WebGPU adapter)")
        .to_string()
}

fn context() -> Result<Arc<GpuContext>> {
    CONTEXT
        .with_borrow(|c| c.clone())
        .ok_or_else(|| Error::InvalidInput("the GPU is not open yet (call init first)".into()))
}

fn loaded() -> Result<Rc<Loaded>> {
    LOADED
        .with_borrow(|l| l.clone())
        .ok_or_else(|| Error::InvalidInput("no model is loaded".into()))
}

/// Opens the browser's WebGPU adapter with the limits it offers; returns the adapter as JSON.
/// `name_hint` names the adapter where the browser leaves wgpu's name empty (Chrome gives only
/// `GPUAdapterInfo.vendor` and `.architecture`, which the page reads itself).
#[wasm_bindgen]
pub async fn init(name_hint: String) -> Result<String, JsValue> {
    let ctx = match CONTEXT.with_borrow(|c| c.clone()) {
        Some(ctx) => ctx,
        None => {
            let opts = GpuOptions {
                backend: Some("webgpu".into()),
                ..Default::default()
            };
            let mut ctx = GpuContext::new(&opts).await.map_err(js_error)?;
            if let Some(c) = Arc::get_mut(&mut ctx) {
                c.info.name = adapter_name(&c.info.name, &name_hint);
            }
            ctx.device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
                let text = format!("{e}").replace('\n', " ");
                web_sys::console::error_1(&format!("uncaptured GPU error: {text}").into());
                GPU_ERRORS.lock().expect("error list poisoned").push(text);
            }));
            ctx.device.set_device_lost_callback(|reason, message| {
                let text = format!("device lost ({reason:?}): {message}");
                web_sys::console::error_1(&text.clone().into());
                GPU_ERRORS.lock().expect("error list poisoned").push(text);
            });
            CONTEXT.with_borrow_mut(|c| *c = Some(ctx.clone()));
            ctx
        }
    };
    let info = &ctx.info;
    json(&AdapterInfo {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
        max_storage_buffer_binding_size: ctx.limits.max_storage_buffer_binding_size,
        max_buffer_size: ctx.limits.max_buffer_size,
        max_compute_workgroups_per_dimension: ctx.limits.max_compute_workgroups_per_dimension,
        features: ctx
            .features
            .iter_names()
            .map(|(n, _)| n.to_string())
            .collect(),
    })
}

/// Loads a model file (safetensors, or ONNX where the library reads it) and makes it the one
/// `classify` uses. `progress` is called with one line per stage. Tuning measures for at most
/// `tune_budget_s` seconds (not a finite number >= 0: until done); what it leaves is measured on
/// a later visit. Returns the model as JSON.
#[wasm_bindgen(js_name = loadModel)]
pub async fn load_model(
    bytes: Vec<u8>,
    name: String,
    progress: js_sys::Function,
    tune_budget_s: f64,
) -> Result<String, JsValue> {
    let say = |text: &str| {
        let _ = progress.call1(&JsValue::NULL, &JsValue::from_str(text));
    };
    let ctx = context().map_err(js_error)?;
    let t0 = now();
    say(&format!(
        "Parsing {name} ({:.1} MB)",
        bytes.len() as f64 / 1e6
    ));
    let model = model::load_bytes(&bytes, &name, None).map_err(js_error)?;
    drop(bytes);
    let parameters = model.parameter_count();
    let arch = model.describe();
    let t1 = now();
    say(&format!(
        "Folding batch norm, uploading weights and building pipelines for {}",
        arch
    ));
    // Drop the old model first: its buffers would otherwise share the GPU with the new one.
    LOADED.with_borrow_mut(|l| *l = None);
    // The model's weights move into the classifier and on to the GPU; each convolution's kernel
    // is chosen by timing the candidates on this adapter, or taken from the tuning cache the
    // worker handed over (`setTuneCache`).
    let preprocess = Preprocess::for_model(&model);
    let options = SessionOptions {
        tune: Tune::Quick,
        tune_budget: (tune_budget_s.is_finite() && tune_budget_s >= 0.0)
            .then(|| std::time::Duration::from_secs_f64(tune_budget_s)),
        ..Default::default()
    };
    let classifier = Classifier::with_options_async(ctx, model, preprocess, &options)
        .await
        .map_err(js_error)?;
    check_gpu_errors().map_err(js_error)?;
    let t2 = now();
    say("Warming up (the first forward pass compiles the shaders)");
    let session = classifier.session();
    let zeros = vec![0.0f32; session.input_shape().iter().product()];
    session.run_async(&zeros).await.map_err(js_error)?;
    check_gpu_errors().map_err(js_error)?;
    let t3 = now();
    let info = ModelInfo {
        name,
        arch,
        classes: classifier.labels().len(),
        input: session.input_shape(),
        parameters,
        macs: session.macs(),
        dispatches: session.dispatch_count(),
        weight_bytes: session.weight_bytes,
        activation_bytes: session.activation_bytes,
        parse_ms: t1 - t0,
        plan_ms: t2 - t1,
        warmup_ms: t3 - t2,
        tune_ms: session.tuning().seconds * 1e3,
        tune_measured: session.tuning().measured,
        tune_shapes: session.tuning().shapes.len(),
        tune_cached: session.tuning().cached(),
        tune_deferred: session.tuning().deferred(),
    };
    let out = json(&info)?;
    LOADED.with_borrow_mut(|l| *l = Some(Rc::new(Loaded { classifier, info })));
    Ok(out)
}

/// The tuning cache as JSON, for the worker to keep (in IndexedDB) until the next visit.
#[wasm_bindgen(js_name = tuneCache)]
pub fn tune_cache() -> String {
    resnet_wgpu::tune::cache::export_json()
}

/// Hands back a tuning cache kept from an earlier visit (what [`tune_cache`] returned); a
/// malformed one is ignored.
#[wasm_bindgen(js_name = setTuneCache)]
pub fn set_tune_cache(json: String) {
    resnet_wgpu::tune::cache::import_json(&json);
}

/// The loaded model as JSON (null when none).
#[wasm_bindgen(js_name = modelInfo)]
pub fn model_info() -> Result<String, JsValue> {
    match LOADED.with_borrow(|l| l.clone()) {
        Some(l) => json(&l.info),
        None => Ok("null".into()),
    }
}

/// Decodes an image (PNG, JPEG, GIF, WebP, BMP, TIFF) and returns the top `k` classes, with the
/// time of each step. The forward time covers upload, every dispatch and the read-back.
#[wasm_bindgen]
pub async fn classify(image: Vec<u8>, k: usize) -> Result<String, JsValue> {
    let loaded = loaded().map_err(js_error)?;
    let c = &loaded.classifier;
    let t0 = now();
    let img = decode_image(&image).map_err(|e| js_error(Error::InvalidInput(format!("{e:#}"))))?;
    let t1 = now();
    let input = c.preprocess().apply(&img);
    let t2 = now();
    let logits = c
        .session()
        .run_async(&input)
        .await
        .map_err(js_error)?
        .logits;
    check_gpu_errors().map_err(js_error)?;
    let t3 = now();
    json(&Classification {
        predictions: c.top(&logits, k).map_err(js_error)?,
        width: img.width(),
        height: img.height(),
        decode_ms: t1 - t0,
        preprocess_ms: t2 - t1,
        forward_ms: t3 - t2,
    })
}

/// Times `runs` forward passes of the loaded model on a zero input (after the warm-up).
#[wasm_bindgen]
pub async fn bench(runs: usize) -> Result<String, JsValue> {
    let loaded = loaded().map_err(js_error)?;
    let session = loaded.classifier.session();
    let zeros = vec![0.0f32; session.input_shape().iter().product()];
    let mut times = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let t = now();
        session.run_async(&zeros).await.map_err(js_error)?;
        times.push(now() - t);
    }
    check_gpu_errors().map_err(js_error)?;
    times.sort_by(f64::total_cmp);
    json(&Bench {
        runs: times.len(),
        median_ms: times[times.len() / 2],
        min_ms: times[0],
        max_ms: times[times.len() - 1],
    })
}

/// Test hook: runs a model file on a raw NCHW float32 .npy batch and returns the logits
/// ([N, classes] flattened), like `resnet-wgpu run`. Leaves the page's model alone.
#[wasm_bindgen(js_name = runRaw)]
pub async fn run_raw(
    model_bytes: Vec<u8>,
    model_name: String,
    npy: Vec<u8>,
) -> Result<Vec<f32>, JsValue> {
    run_raw_inner(&model_bytes, &model_name, &npy)
        .await
        .map_err(js_error)
}

async fn run_raw_inner(model_bytes: &[u8], model_name: &str, npy: &[u8]) -> Result<Vec<f32>> {
    let ctx = context()?;
    let model = model::load_bytes(model_bytes, model_name, None)?;
    let input = read_npy(npy, "input.npy")?;
    let (n, chw) = split_batch(&input.shape)?;
    let graph = model.into_graph_for(chw)?;
    let opts = SessionOptions {
        batch: n,
        ..Default::default()
    };
    let session = Session::new_async(ctx, graph, &opts).await?;
    let logits = session.run_async(&input.data).await?.logits;
    check_gpu_errors()?;
    Ok(logits)
}

/// Test hook: plans (but does not run) a model for per-image input `c`x`h`x`w`, to check that
/// inputs too large for the adapter are refused with a clear message. Returns the plan as JSON.
#[wasm_bindgen(js_name = planOnly)]
pub async fn plan_only(
    model_bytes: Vec<u8>,
    model_name: String,
    c: usize,
    h: usize,
    w: usize,
) -> Result<String, JsValue> {
    let ctx = context().map_err(js_error)?;
    let model = model::load_bytes(&model_bytes, &model_name, None).map_err(js_error)?;
    let graph = model.into_graph_for([c, h, w]).map_err(js_error)?;
    let session = Session::new_async(ctx, graph, &SessionOptions::default())
        .await
        .map_err(js_error)?;
    check_gpu_errors().map_err(js_error)?;
    #[derive(Serialize)]
    struct Plan {
        batch: usize,
        activation_bytes: u64,
        weight_bytes: u64,
    }
    json(&Plan {
        batch: session.batch,
        activation_bytes: session.activation_bytes,
        weight_bytes: session.weight_bytes,
    })
}

/// The portability suite (what `resnet-wgpu portability` runs natively, less the fixture files)
/// on the browser's WebGPU adapter: once with the limits the adapter offers, once with only
/// WebGPU's default limits. `quick` runs the smaller networks. `on_check` is called with
/// `(run_index, check_json)` after each check, to draw rows as they finish. Returns
/// `{version, adapters: [report, report], markdown}` as JSON.
#[wasm_bindgen]
pub async fn conformance(
    name_hint: String,
    quick: bool,
    on_check: js_sys::Function,
) -> Result<String, JsValue> {
    let opts = SuiteOptions {
        quick,
        ..Default::default()
    };
    let mut reports = Vec::new();
    for (run, webgpu_default_limits) in [false, true].into_iter().enumerate() {
        // WebGPU lets each adapter open one device: ask for a fresh adapter per run.
        let adapter = select_adapter(&GpuOptions {
            backend: Some("webgpu".into()),
            ..Default::default()
        })
        .await
        .map_err(js_error)?;
        let mut report_check = |check: &portability::Check| {
            if let Ok(text) = serde_json::to_string(check) {
                let _ = on_check.call2(
                    &JsValue::NULL,
                    &JsValue::from(run as u32),
                    &JsValue::from_str(&text),
                );
            }
        };
        let mut report = check_adapter(
            &adapter,
            webgpu_default_limits,
            &opts,
            None,
            &mut report_check,
        )
        .await;
        report.name = adapter_name(&report.name, &name_hint);
        // The adapter and its device go now, before the next run asks for another.
        drop(adapter);
        reports.push(report);
    }
    let version = resnet_wgpu::VERSION;
    json(&serde_json::json!({
        "version": version,
        "adapters": reports,
        "markdown": portability::report::markdown(&reports, version),
    }))
}
