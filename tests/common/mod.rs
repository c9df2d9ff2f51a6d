//! Shared test helpers: one GPU context per test binary, tolerance checks, fixture paths.
#![allow(dead_code)]

use resnet_wgpu::gpu::{GpuContext, GpuOptions};
use resnet_wgpu::graph::Graph;
use resnet_wgpu::graph::Op;
use resnet_wgpu::model::npy::read_npy;
use resnet_wgpu::plan::conv::{ConvShape, candidates};
use resnet_wgpu::{ConvPolicy, Precision, Session, SessionOptions, Tensor};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The adapter under test: `RESNET_WGPU_TEST_BACKEND` (vulkan, gl, ...) or the best available.
/// No adapter is a test failure, never a skip.
pub fn gpu() -> Arc<GpuContext> {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        let backend = std::env::var("RESNET_WGPU_TEST_BACKEND").ok();
        let ctx = GpuContext::new_blocking(&GpuOptions {
            backend,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("no GPU adapter for the tests: {e:#}"));
        eprintln!("testing on {}", ctx.describe());
        ctx
    })
    .clone()
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under tests/fixtures (see its README for where each came from); fails loudly if it is
/// missing.
pub fn local_fixture(rel: &str) -> PathBuf {
    let p = root().join("tests/fixtures").join(rel);
    assert!(p.exists(), "missing test fixture {}", p.display());
    p
}

/// The real Fashion-MNIST test set: `$RESNET_WGPU_FASHION_MNIST`, else where Debian's
/// dataset-fashion-mnist package puts it (the CLI's `eval --dir` default is the same).
pub fn fashion_mnist_dir() -> PathBuf {
    std::env::var_os("RESNET_WGPU_FASHION_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/datasets/fashion-mnist"))
}

/// The ResNet-18 reference fixture: the seeded model and input that
/// scripts/make_resnet18_fixture.py made tests/fixtures/resnet18's reference outputs from.
pub fn resnet18_fixture() -> (resnet_wgpu::Model, Tensor) {
    resnet_wgpu::model::seeded::resnet18_fixture().unwrap()
}

/// Checks `got` (a tap, flattened) at every `STEP`-th value against a sampled activation of
/// tests/fixtures/resnet18/resnet18.activations.npz (arrays `stage` and `stage_step`).
pub fn check_sampled(
    got: &[f32],
    npz_path: &std::path::Path,
    stage: &str,
    atol: f32,
    rtol: f32,
) -> Result<f32, String> {
    let want = npz(npz_path, stage);
    let step = npz_step(npz_path, &format!("{stage}_step"));
    let sampled: Vec<f32> = got.iter().step_by(step).copied().collect();
    check_close(&sampled, &want.data, atol, rtol)
}

/// A 0-d int64 array of an .npz archive.
fn npz_step(path: &std::path::Path, name: &str) -> usize {
    use std::io::Read;
    let file = std::fs::File::open(path).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let mut entry = archive.by_name(&format!("{name}.npy")).unwrap();
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    let v: Vec<i64> = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap();
    v[0] as usize
}

pub fn npy(path: &std::path::Path) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read_npy(&bytes, &path.display().to_string()).unwrap()
}

/// Reads one array of an .npz archive (a zip of .npy files).
pub fn npz(path: &std::path::Path, name: &str) -> Tensor {
    use std::io::Read;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive =
        zip::ZipArchive::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut entry = archive
        .by_name(&format!("{name}.npy"))
        .unwrap_or_else(|e| panic!("{} has no array '{name}': {e}", path.display()));
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    read_npy(&bytes, &format!("{}:{name}", path.display())).unwrap()
}

/// Checks |got - want| <= atol + rtol * |want| everywhere; returns the max abs error, or the
/// first violation.
pub fn check_close(got: &[f32], want: &[f32], atol: f32, rtol: f32) -> Result<f32, String> {
    if got.len() != want.len() {
        return Err(format!("length {} != {}", got.len(), want.len()));
    }
    let mut max_err = 0.0f32;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        if err.is_nan() || err > atol + rtol * w.abs() {
            return Err(format!(
                "element {i}: got {g}, want {w} (|err| {err} > {atol} + {rtol}*|want|)"
            ));
        }
        max_err = max_err.max(err);
    }
    Ok(max_err)
}

/// Runs a graph on the GPU and returns the output of every image.
pub fn run_gpu(graph: &Graph, input: &[f32], batch: usize, optimize: bool) -> Vec<f32> {
    run_gpu_with(graph, input, batch, optimize, ConvPolicy::Auto)
}

/// [`run_gpu`] with a chosen convolution kernel.
pub fn run_gpu_with(
    graph: &Graph,
    input: &[f32],
    batch: usize,
    optimize: bool,
    conv: ConvPolicy,
) -> Vec<f32> {
    let session = Session::new(
        gpu(),
        graph.clone(),
        &SessionOptions {
            batch,
            optimize,
            conv,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{conv:?}: {e}"));
    session.run(input).unwrap().logits
}

/// The first convolution of `graph` as the planner sees it at `batch` images a pass.
pub fn first_conv(graph: &Graph, batch: usize) -> ConvShape {
    graph
        .nodes
        .iter()
        .find_map(|n| match &n.op {
            Op::Conv(c) => Some(ConvShape::of(c, graph.shape(n.inputs[0]), n.shape, batch)),
            _ => None,
        })
        .expect("the graph has a convolution")
}

/// Every way `ctx` can run the first convolution of `graph` (what the planner's
/// `plan::conv::candidates` enumerates, each forced in turn), then the default table.
pub fn conv_policies(
    ctx: &GpuContext,
    graph: &Graph,
    batch: usize,
    precision: Precision,
) -> Vec<ConvPolicy> {
    let mut out: Vec<ConvPolicy> = candidates(ctx, &first_conv(graph, batch), precision)
        .into_iter()
        .map(ConvPolicy::Force)
        .collect();
    out.push(ConvPolicy::Auto);
    out
}

/// A file of a PyTorch training fixture (tests/fixtures/training/NET/FILE).
pub fn training_fixture(net: &str, file: &str) -> PathBuf {
    local_fixture(&format!("training/{net}/{file}"))
}

/// The unfused graph of a training fixture's starting weights, as `ArchSpec::build` makes it.
pub fn training_graph(net: &str, arch: &str) -> Graph {
    resnet_wgpu::model::load_file(&training_fixture(net, "weights.safetensors"), Some(arch))
        .and_then(|m| m.into_graph())
        .unwrap_or_else(|e| panic!("{net}: {e}"))
}

/// A small net of the paper's kind: one block per stage of `widths`, synthetic weights from
/// `seed` (for the training tests' awkward shapes).
pub fn one_block_net(
    seed: u64,
    imagenet: bool,
    block: resnet_wgpu::graph::arch::BlockKind,
    shortcut: resnet_wgpu::graph::arch::Shortcut,
    widths: &[usize],
    input: [usize; 3],
) -> Graph {
    let spec = resnet_wgpu::graph::arch::ArchSpec {
        depth: 0,
        imagenet,
        block,
        stages: vec![1; widths.len()],
        widths: widths.to_vec(),
        shortcut,
        stride_on_1x1: false,
    };
    spec.build(
        &mut resnet_wgpu::graph::params::SyntheticParams::new(seed, 10),
        input,
    )
    .unwrap()
}
