//! f16 convolutions (`Precision::F16`) against the f64 CPU reference, on an adapter with
//! SHADER_F16 (lavapipe has it): a sweep of awkward conv shapes through every tuned variant and
//! Winograd, with the f16 tolerance of the portability suite; a planted weight-index bug that the
//! tolerance must catch; whole trained networks (the default model on real Fashion-MNIST test
//! images, ResNet-18 on its fixture); and a clear error where the adapter lacks SHADER_F16.

mod common;

use common::{check_close, conv_policies, gpu, local_fixture, npy, resnet18_fixture};
use resnet_wgpu::dataset::load_fashion_mnist_test;
use resnet_wgpu::gpu::{GpuContext, GpuOptions, ShaderFault};
use resnet_wgpu::graph::Graph;
use resnet_wgpu::kernels::{ConvTile, Kernel};
use resnet_wgpu::model::{self, default::default_model};
use resnet_wgpu::portability::cases::{
    F16_NETWORK_TOL, conv_graph, f16_conv_tolerance, random_conv,
};
use resnet_wgpu::preprocess::Preprocess;
use resnet_wgpu::reference::run_graph;
use resnet_wgpu::scores::top_k;
use resnet_wgpu::tensor::SplitMix64;
use resnet_wgpu::{ConvPolicy, Precision, Session, SessionOptions};
use std::process::Command;
use std::sync::Arc;

/// The test adapter, which must have SHADER_F16.
fn f16_gpu() -> Arc<GpuContext> {
    let ctx = gpu();
    assert!(
        ctx.features.contains(wgpu::Features::SHADER_F16),
        "adapter {} lacks SHADER_F16; the f16 tests need one (lavapipe: RESNET_WGPU_TEST_BACKEND=vulkan)",
        ctx.describe()
    );
    ctx
}

fn session(ctx: Arc<GpuContext>, g: &Graph, batch: usize, conv: ConvPolicy) -> Session {
    Session::new(
        ctx,
        g.clone(),
        &SessionOptions {
            batch,
            optimize: false,
            conv,
            precision: Precision::F16,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("f16 session with {conv:?}: {e:#}"))
}

#[test]
fn f16_conv_matches_reference_over_shape_sweep() {
    let ctx = f16_gpu();
    // (in_c, out_c, h, w, kernel, stride, pad)
    let shapes = [
        (3, 8, 9, 7, 3, 1, 1),     // odd sizes, 3x3 stride 1 (Winograd-eligible)
        (5, 6, 11, 13, 3, 2, 1),   // stride 2 on odd inputs
        (3, 16, 23, 21, 7, 2, 3),  // a 7x7 stride-2 stem on an odd size
        (17, 9, 5, 5, 1, 1, 0),    // 1x1, channels not multiples of 4
        (18, 40, 13, 11, 1, 2, 0), // 1x1 stride 2, several channel tiles
        (4, 4, 1, 1, 3, 1, 1),     // a 1x1 map under a padded 3x3
        (33, 65, 10, 10, 3, 1, 1), // Winograd-eligible, odd channel counts
        (130, 36, 7, 5, 3, 1, 1),  // a longer dot product (k = 1170) on a tiny map
        (64, 48, 14, 13, 3, 1, 1), // several channel and pixel tiles
        (256, 72, 3, 3, 1, 1, 0),  // 1x1 with k = 256
        (5, 9, 4, 6, 1, 1, 1),     // 1x1 with padding: the general path
        (16, 24, 12, 12, 3, 1, 0), // 3x3 without padding
        (64, 64, 16, 16, 3, 1, 1), // a ResNet-like 3x3
        (3, 64, 56, 56, 7, 2, 3),  // a larger stem
        (512, 64, 4, 4, 1, 1, 0),  // a ResNet-50-like 1x1 reduction
        (128, 128, 8, 8, 3, 2, 1), // stride-2 3x3 downsampling
    ];
    let mut rng = SplitMix64(16);
    let mut worst = 0.0f64;
    for (i, &shape) in shapes.iter().enumerate() {
        let (ic, oc, h, w, k, s, p) = shape;
        let kk = ic * k * k;
        let (atol, rtol) = f16_conv_tolerance(kk);
        for (variant, (bias, relu, residual)) in [(false, false, false), (true, true, true)]
            .into_iter()
            .enumerate()
        {
            let batch = if (i + variant) % 2 == 0 { 1 } else { 3 };
            let g = conv_graph(&mut rng, shape, bias, relu, residual).unwrap();
            let input = rng.normal_vec(batch * ic * h * w, 1.0);
            let want = run_graph(&g, &input, batch).swap_remove(g.output);
            for policy in conv_policies(&ctx, &g, batch, Precision::F16) {
                let what = format!(
                    "conv {ic}->{oc} {h}x{w} k{k} s{s} p{p} bias={bias} relu={relu} residual={residual} n={batch} with {policy:?}"
                );
                let sess = session(ctx.clone(), &g, batch, policy);
                // Every convolution really ran the f16 kernels.
                for d in sess.dispatches() {
                    assert!(
                        !matches!(
                            d.kernel,
                            Kernel::ConvDirect(_, Precision::F32) | Kernel::ConvReference
                        ),
                        "{what}: {} ran {} in f32",
                        d.label,
                        d.kernel.name()
                    );
                }
                assert!(
                    sess.dispatches()
                        .iter()
                        .any(|d| matches!(d.kernel, Kernel::ConvDirect(_, Precision::F16))),
                    "{what}: no f16 kernel"
                );
                let got = sess.run(&input).unwrap().logits;
                let err = check_close(&got, &want, atol as f32, rtol as f32)
                    .unwrap_or_else(|e| panic!("{what} in f16: {e}"));
                let bound = atol + rtol * want.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
                worst = worst.max(err as f64 / bound);
                if policy == ConvPolicy::Auto {
                    eprintln!(
                        "f16 conv {ic}->{oc} {h}x{w} k{k} s{s} (k = {kk}) residual={residual}: max abs error {err:.2e}, atol {atol:.2e}"
                    );
                }
            }
        }
    }
    eprintln!("f16 sweep: worst error / tolerance {worst:.2}");
}

/// The f16 tolerance can fail: a weight read from the wrong index, planted in one f16 variant,
/// is caught (and the same conv passes without it).
#[test]
fn f16_tolerance_catches_a_wrong_weight_index() {
    f16_gpu();
    // A context of its own, so that the planted bug stays out of the other tests.
    let ctx = GpuContext::new_blocking(&GpuOptions {
        backend: std::env::var("RESNET_WGPU_TEST_BACKEND").ok(),
        ..Default::default()
    })
    .unwrap();
    let tile = ConvTile::new(8, 2);
    let shape = (64, 16, 9, 9, 3, 1, 1);
    let mut rng = SplitMix64(3);
    let g = conv_graph(&mut rng, shape, true, false, false).unwrap();
    let input = rng.normal_vec(2 * 64 * 9 * 9, 1.0);
    let want = run_graph(&g, &input, 2).swap_remove(g.output);
    let (atol, rtol) = f16_conv_tolerance(64 * 9);
    let run = || {
        session(ctx.clone(), &g, 2, ConvPolicy::Tile(tile))
            .run(&input)
            .unwrap()
            .logits
    };
    let good = check_close(&run(), &want, atol as f32, rtol as f32).unwrap();
    // Output channels 4..7 of input channel 0 take output channels 0..3's weights.
    ctx.inject_fault(ShaderFault {
        kernel: Kernel::ConvDirect(tile, Precision::F16),
        find: "weight[wi + 1u]".into(),
        replace: "weight[wi + 0u]".into(),
    })
    .unwrap();
    let bad = run();
    let max = bad
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!("f16 conv k = 576: max error {good:.2e} as written, {max:.2e} with the bug");
    assert!(
        check_close(&bad, &want, atol as f32, rtol as f32).is_err(),
        "the f16 tolerance (atol {atol:.2e}) let a wrong weight index pass (max error {max:.2e})"
    );
}

/// Top-1 agreement and logit differences of f16 against f32 sessions of the same network.
fn compare_precisions(
    graph: &Graph,
    input: &[f32],
    batch: usize,
    classes: usize,
) -> (Vec<f32>, Vec<f32>, u64, u64) {
    let run = |precision| {
        let s = Session::new(
            f16_gpu(),
            graph.clone(),
            &SessionOptions {
                batch,
                precision,
                ..Default::default()
            },
        )
        .unwrap();
        let logits = s.run(input).unwrap().logits;
        assert_eq!(logits.len() % classes, 0);
        (logits, s.weight_bytes)
    };
    let (f32_logits, f32_bytes) = run(Precision::F32);
    let (f16_logits, f16_bytes) = run(Precision::F16);
    (f32_logits, f16_logits, f32_bytes, f16_bytes)
}

/// The embedded default model (ResNet-20 trained on Fashion-MNIST) on 300 real test images: f16
/// agrees with f32 on >= 99% of the top-1 classes, logits within the network tolerance, and its
/// weights take about half the bytes.
#[test]
fn f16_default_model_agrees_with_f32_on_fashion_mnist() {
    let model = default_model().unwrap();
    let pre = Preprocess::for_model(&model);
    let data = load_fashion_mnist_test(&common::fashion_mnist_dir()).unwrap_or_else(|e| {
        panic!("{e:#} (install Debian's dataset-fashion-mnist for the f16 network test)")
    });
    let n = 300;
    let input: Vec<f32> = (0..n).flat_map(|i| data.input(i, &pre)).collect();
    let graph = model.graph_for(pre.output_shape()).unwrap();
    let classes = graph.output_shape()[0];
    let (a, b, f32_bytes, f16_bytes) = compare_precisions(&graph, &input, 100, classes);
    let agree = a
        .chunks(classes)
        .zip(b.chunks(classes))
        .filter(|(x, y)| top_k(x, 1) == top_k(y, 1))
        .count();
    let (atol, rtol) = F16_NETWORK_TOL;
    let err = check_close(&b, &a, atol as f32, rtol as f32)
        .unwrap_or_else(|e| panic!("default model, f16 vs f32 logits: {e}"));
    let correct = b
        .chunks(classes)
        .enumerate()
        .filter(|(i, row)| top_k(row, 1)[0] == data.labels[*i] as usize)
        .count();
    eprintln!(
        "default model, {n} Fashion-MNIST images: f16 top-1 agrees with f32 on {agree}, max |logit difference| {err:.2e}, f16 accuracy {correct}/{n}, weights {f32_bytes} -> {f16_bytes} bytes"
    );
    assert!(
        agree * 100 >= n * 99,
        "f16 and f32 agree on only {agree} of {n}"
    );
    assert!(
        (f16_bytes as f64) < 0.6 * f32_bytes as f64,
        "f16 weights take {f16_bytes} bytes, f32 {f32_bytes}"
    );
}

/// Trained networks against the f64 references of their fixtures: ResNet-20 (CIFAR-10) and
/// ResNet-18 (ImageNet, 224x224), logits within the network tolerance, same top-1.
#[test]
fn f16_fixture_networks_match_f64_reference() {
    let resnet20 = local_fixture("resnet20");
    let resnet18 = local_fixture("resnet18");
    let fixtures = [
        (
            "resnet20",
            model::load_file(&resnet20.join("resnet20.safetensors"), None).unwrap(),
            npy(&resnet20.join("resnet20.input.npy")),
            npy(&resnet20.join("resnet20.logits_fp64.npy")),
        ),
        {
            let (m, input) = resnet18_fixture();
            let want = npy(&resnet18.join("resnet18.logits_fp64.npy"));
            ("resnet18", m, input, want)
        },
    ];
    for (name, m, input, want) in fixtures {
        let [n, c, h, w] = input.shape[..] else {
            panic!("{name}: input is not NCHW")
        };
        let graph = m.graph_for([c, h, w]).unwrap();
        let classes = graph.output_shape()[0];
        let (_, got, f32_bytes, f16_bytes) = compare_precisions(&graph, &input.data, n, classes);
        let (atol, rtol) = F16_NETWORK_TOL;
        let err = check_close(&got, &want.data, atol as f32, rtol as f32)
            .unwrap_or_else(|e| panic!("{name} in f16 vs float64: {e}"));
        let scale = want.data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (g, w) in got.chunks(classes).zip(want.data.chunks(classes)) {
            assert_eq!(top_k(g, 1), top_k(w, 1), "{name}: f16 changed the top-1");
        }
        eprintln!(
            "{name} in f16: max |logit error| vs float64 {err:.2e} (largest logit {scale:.1}), weights {f32_bytes} -> {f16_bytes} bytes"
        );
    }
}

/// An adapter without SHADER_F16 (llvmpipe's GL) refuses an f16 session with one clear line
/// naming the adapter, and so does the command line.
#[test]
fn f16_without_shader_f16_is_a_clear_error() {
    let ctx = GpuContext::new_blocking(&GpuOptions {
        backend: Some("gl".into()),
        ..Default::default()
    })
    .unwrap_or_else(|e| {
        panic!("this test needs an adapter without SHADER_F16 (llvmpipe GL): {e:#}")
    });
    assert!(
        !ctx.features.contains(wgpu::Features::SHADER_F16),
        "{} has SHADER_F16; this test needs one without",
        ctx.describe()
    );
    let mut g = Graph::new([3, 8, 8]);
    g.conv(
        "conv",
        0,
        random_conv(&mut SplitMix64(1), 3, 4, [3, 3], 1, [1; 4], true, true),
    )
    .unwrap();
    let opts = SessionOptions {
        precision: Precision::F16,
        ..Default::default()
    };
    let e = format!(
        "{:#}",
        Session::new(ctx.clone(), g.clone(), &opts).err().unwrap()
    );
    assert!(
        e.contains(&ctx.info.name) && e.contains("SHADER_F16") && !e.contains('\n'),
        "{e}"
    );
    // f16 with the (f32-only) reference kernel is refused too, on any adapter.
    let reference = SessionOptions {
        conv: ConvPolicy::Reference,
        ..opts
    };
    let e = format!(
        "{:#}",
        Session::new(gpu(), g.clone(), &reference).err().unwrap()
    );
    assert!(e.contains("reference"), "{e}");

    let out = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
        // The fixed kernel table: reproducible outputs and no tuning per process (tests/tune.rs
        // and cli.rs's tuning test cover tuning).
        .env("RESNET_WGPU_TUNE", "off")
        .args(["bench", "--arch", "resnet20", "--iters", "1"])
        .args(["--backend", "gl", "--precision", "f16"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert!(
        lines.len() == 1 && lines[0].contains("SHADER_F16") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// `--precision f16` on the command line: the bench runs, says so, and its weights take about
/// half the bytes of f32's; a precision it does not know is refused.
#[test]
fn f16_on_the_command_line() {
    f16_gpu();
    let bench = |precision: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
            // The fixed kernel table: reproducible outputs and no tuning per process (tests/tune.rs
            // and cli.rs's tuning test cover tuning).
            .env("RESNET_WGPU_TUNE", "off")
            .args(["bench", "--arch", "resnet20", "--iters", "1", "--json"])
            .args(["--precision", precision])
            .args(
                std::env::var("RESNET_WGPU_TEST_BACKEND")
                    .map(|b| vec!["--backend".to_string(), b])
                    .unwrap_or_default(),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (a, b) = (bench("f32"), bench("f16"));
    assert_eq!(
        (a["precision"].as_str(), b["precision"].as_str()),
        (Some("f32"), Some("f16"))
    );
    let (wa, wb) = (
        a["weight_bytes"].as_f64().unwrap(),
        b["weight_bytes"].as_f64().unwrap(),
    );
    assert!(wb < 0.6 * wa, "f16 weights {wb} bytes vs f32 {wa}");

    let out = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
        // The fixed kernel table: reproducible outputs and no tuning per process (tests/tune.rs
        // and cli.rs's tuning test cover tuning).
        .env("RESNET_WGPU_TUNE", "off")
        .args(["bench", "--arch", "resnet20", "--precision", "f64"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("f32 or f16"),
        "{stderr}"
    );
}
