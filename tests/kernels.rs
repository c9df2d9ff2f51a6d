//! Every GPU kernel against the CPU reference over a sweep of awkward shapes: odd sizes, channels
//! that are not multiples of 4, stride 2 on odd inputs, 1x1 spatial, batch 1 and 3, with and
//! without bias / residual / ReLU. Tolerance: atol 1e-4 + rtol 5e-4.

mod common;

use common::{check_close, conv_policies, gpu, run_gpu, run_gpu_with};
use resnet_wgpu::graph::{BatchNorm, Graph, Linear, MaxPool};
use resnet_wgpu::portability::cases::random_conv;
use resnet_wgpu::reference::run_graph;
use resnet_wgpu::tensor::{SplitMix64, Tensor};
use resnet_wgpu::{ConvPolicy, Precision};

const ATOL: f32 = 1e-4;
const RTOL: f32 = 5e-4;

fn random(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    rng.normal_vec(n, 1.0)
}

/// Runs `g` on the GPU unoptimized (so each kernel runs as written) and compares every image's
/// output with the reference.
fn check(g: &Graph, batch: usize, seed: u64, what: &str) {
    check_with(g, batch, seed, what, &[ConvPolicy::Auto]);
}

/// [`check`] once per convolution kernel choice.
fn check_with(g: &Graph, batch: usize, seed: u64, what: &str, policies: &[ConvPolicy]) {
    let mut rng = SplitMix64(seed);
    let [c, h, w] = g.input_shape();
    let input = random(&mut rng, batch * c * h * w);
    let want = run_graph(g, &input, batch).swap_remove(g.output);
    for &policy in policies {
        let got = run_gpu_with(g, &input, batch, false, policy);
        if let Err(e) = check_close(&got, &want, ATOL, RTOL) {
            panic!("{what} with {policy:?}: {e}");
        }
    }
}

struct ConvCase {
    ic: usize,
    oc: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    stride: usize,
    pad: [usize; 4],
}

#[test]
fn conv_matches_reference_over_shape_sweep() {
    let cases = [
        ConvCase {
            ic: 3,
            oc: 8,
            h: 9,
            w: 7,
            k: [3, 3],
            stride: 1,
            pad: [1; 4],
        },
        ConvCase {
            ic: 5,
            oc: 6,
            h: 11,
            w: 13,
            k: [3, 3],
            stride: 2,
            pad: [1; 4],
        },
        ConvCase {
            ic: 3,
            oc: 5,
            h: 15,
            w: 15,
            k: [7, 7],
            stride: 2,
            pad: [3; 4],
        },
        ConvCase {
            ic: 17,
            oc: 9,
            h: 5,
            w: 5,
            k: [1, 1],
            stride: 1,
            pad: [0; 4],
        },
        ConvCase {
            ic: 8,
            oc: 12,
            h: 7,
            w: 9,
            k: [1, 1],
            stride: 2,
            pad: [0; 4],
        },
        ConvCase {
            ic: 4,
            oc: 4,
            h: 1,
            w: 1,
            k: [3, 3],
            stride: 1,
            pad: [1; 4],
        },
        ConvCase {
            ic: 6,
            oc: 3,
            h: 6,
            w: 4,
            k: [3, 3],
            stride: 1,
            pad: [0; 4],
        },
        ConvCase {
            ic: 3,
            oc: 4,
            h: 8,
            w: 8,
            k: [3, 3],
            stride: 2,
            pad: [0, 0, 1, 1],
        },
        ConvCase {
            ic: 4,
            oc: 7,
            h: 6,
            w: 5,
            k: [3, 1],
            stride: 1,
            pad: [1, 0, 1, 0],
        },
        ConvCase {
            ic: 33,
            oc: 65,
            h: 10,
            w: 10,
            k: [3, 3],
            stride: 1,
            pad: [1; 4],
        },
        // Several channel and pixel tiles per layer (tiles of 16 channels x 32 pixels).
        ConvCase {
            ic: 64,
            oc: 48,
            h: 14,
            w: 13,
            k: [3, 3],
            stride: 1,
            pad: [1; 4],
        },
        ConvCase {
            ic: 20,
            oc: 36,
            h: 15,
            w: 15,
            k: [1, 1],
            stride: 1,
            pad: [0; 4],
        },
        ConvCase {
            ic: 18,
            oc: 40,
            h: 13,
            w: 11,
            k: [1, 1],
            stride: 2,
            pad: [0; 4],
        },
        // Several 64-channel tiles, the last partial, and a K loop (9 x 10 steps) that is not
        // a whole number of the tiled kernels' chunks, on an odd map at stride 2.
        ConvCase {
            ic: 40,
            oc: 70,
            h: 9,
            w: 17,
            k: [3, 3],
            stride: 2,
            pad: [1; 4],
        },
        // A stem: 3 channels, 7x7 stride 2, on an odd size.
        ConvCase {
            ic: 3,
            oc: 16,
            h: 23,
            w: 21,
            k: [7, 7],
            stride: 2,
            pad: [3; 4],
        },
        // 1x1 with padding takes the general path.
        ConvCase {
            ic: 5,
            oc: 9,
            h: 4,
            w: 6,
            k: [1, 1],
            stride: 1,
            pad: [1; 4],
        },
    ];
    let mut rng = SplitMix64(7);
    for (i, c) in cases.iter().enumerate() {
        for (variant, (bias, relu, residual)) in [
            (false, false, false),
            (true, true, false),
            (true, true, true),
            (false, false, true),
        ]
        .into_iter()
        .enumerate()
        {
            let batch = if (i + variant) % 2 == 0 { 1 } else { 3 };
            let mut g = Graph::new([c.ic, c.h, c.w]);
            // A residual of the output's shape, made by a second conv and fed to the first.
            let source = residual.then(|| {
                g.conv(
                    "residual_source",
                    0,
                    random_conv(&mut rng, c.ic, c.oc, c.k, c.stride, c.pad, true, false),
                )
                .unwrap()
            });
            let y = g
                .conv(
                    "conv",
                    0,
                    random_conv(&mut rng, c.ic, c.oc, c.k, c.stride, c.pad, bias, relu),
                )
                .unwrap();
            g.nodes[y].inputs.extend(source);
            let what = format!(
                "conv {}->{} {}x{} k{:?} s{} pad{:?} bias={bias} relu={relu} residual={residual} batch={batch}",
                c.ic, c.oc, c.h, c.w, c.k, c.stride, c.pad
            );
            let policies = conv_policies(&gpu(), &g, batch, Precision::F32);
            check_with(&g, batch, 100 + i as u64, &what, &policies);
        }
    }
}

#[test]
fn max_pool_matches_reference() {
    for (i, &(c, h, w, k, s, p)) in [
        (3, 9, 9, 3, 2, 1),
        (5, 8, 7, 2, 2, 0),
        (4, 13, 11, 3, 2, 1),
        (2, 1, 1, 1, 1, 0),
        (3, 7, 7, 3, 1, 1),
        (6, 112, 112, 3, 2, 1),
    ]
    .iter()
    .enumerate()
    {
        let mut g = Graph::new([c, h, w]);
        g.max_pool(
            "pool",
            0,
            MaxPool {
                kernel: [k, k],
                stride: [s, s],
                pad: [p; 4],
            },
        )
        .unwrap();
        check(
            &g,
            1 + 2 * (i % 2),
            i as u64,
            &format!("max pool {c}x{h}x{w} k{k} s{s} p{p}"),
        );
    }
}

#[test]
fn global_avg_pool_matches_reference() {
    for (i, &(c, h, w)) in [(5, 7, 7), (3, 1, 1), (17, 4, 9), (64, 8, 8)]
        .iter()
        .enumerate()
    {
        let mut g = Graph::new([c, h, w]);
        g.global_avg_pool("gap", 0);
        check(
            &g,
            1 + 2 * (i % 2),
            i as u64,
            &format!("global avg pool {c}x{h}x{w}"),
        );
    }
}

#[test]
fn shortcut_a_matches_reference() {
    for (i, &(ic, oc, h, w, s)) in [
        (16, 32, 9, 9, 2),
        (3, 7, 6, 5, 2),
        (4, 4, 5, 5, 1),
        (5, 11, 1, 1, 2),
        (32, 64, 16, 16, 2),
    ]
    .iter()
    .enumerate()
    {
        let mut g = Graph::new([ic, h, w]);
        g.shortcut_a("shortcut", 0, s, oc).unwrap();
        check(
            &g,
            1 + 2 * (i % 2),
            i as u64,
            &format!("shortcut A {ic}->{oc} {h}x{w} s{s}"),
        );
    }
}

#[test]
fn add_and_relu_match_reference() {
    for (i, &(c, h, w)) in [(3, 5, 7), (1, 1, 1), (17, 9, 3)].iter().enumerate() {
        for relu in [false, true] {
            let mut g = Graph::new([c, h, w]);
            let r = g.relu("relu", 0);
            let s = g.shortcut_a("copy", 0, 1, c).unwrap();
            g.add("add", r, s, relu).unwrap();
            check(
                &g,
                1 + 2 * (i % 2),
                i as u64,
                &format!("add {c}x{h}x{w} relu={relu}"),
            );
        }
    }
}

#[test]
fn batch_norm_matches_reference() {
    let mut rng = SplitMix64(3);
    for (i, &(c, h, w)) in [(3, 5, 7), (5, 1, 1), (18, 6, 6)].iter().enumerate() {
        for relu in [false, true] {
            let bn = BatchNorm {
                gamma: (0..c).map(|_| 0.5 + rng.uniform()).collect(),
                beta: rng.normal_vec(c, 0.1),
                mean: rng.normal_vec(c, 0.1),
                var: (0..c).map(|_| 0.5 + rng.uniform()).collect(),
                eps: 1e-5,
                relu,
            };
            let mut g = Graph::new([c, h, w]);
            g.batch_norm("bn", 0, bn).unwrap();
            check(
                &g,
                1 + 2 * (i % 2),
                i as u64,
                &format!("batch norm {c}x{h}x{w} relu={relu}"),
            );
        }
    }
}

#[test]
fn linear_matches_reference() {
    let mut rng = SplitMix64(5);
    for (i, &(shape, out, bias)) in [
        ([17, 1, 1], 5, true),
        ([4, 2, 3], 10, false),
        ([512, 1, 1], 1000, true),
        ([3, 1, 1], 1, true),
    ]
    .iter()
    .enumerate()
    {
        let inp: usize = shape.iter().product();
        let lin = Linear {
            weight: Tensor::new(
                vec![out, inp],
                rng.normal_vec(out * inp, 1.0 / (inp as f32).sqrt()),
            )
            .unwrap(),
            bias: bias.then(|| rng.normal_vec(out, 0.1)),
        };
        let mut g = Graph::new(shape);
        g.linear("fc", 0, lin).unwrap();
        check(
            &g,
            1 + 2 * (i % 2),
            i as u64,
            &format!("linear {shape:?} -> {out} bias={bias}"),
        );
    }
}

#[test]
fn softmax_matches_reference() {
    for (i, &len) in [10usize, 1000, 1].iter().enumerate() {
        let mut g = Graph::new([len, 1, 1]);
        g.softmax("softmax", 0);
        check(&g, 3, i as u64, &format!("softmax over {len}"));
    }
    // Large logits must not overflow (the kernel subtracts the row maximum).
    let mut g = Graph::new([4, 1, 1]);
    g.softmax("softmax", 0);
    let got = run_gpu(&g, &[1000.0, 999.0, -5.0, 1000.0], 1, false);
    assert!(
        got.iter().all(|v| v.is_finite()),
        "softmax overflowed: {got:?}"
    );
    assert!((got[0] - got[3]).abs() < 1e-6 && got[0] > 0.4);
}

#[test]
fn folded_stem_matches_reference() {
    // With optimization on, a stride-2 conv on the input runs as a stride-1 conv on a
    // space-to-depth input (graph/space_to_depth.rs); every tuned kernel must agree.
    let mut rng = SplitMix64(11);
    for (i, &(c, oc, h, w, k, pad)) in [
        (3, 16, 23, 21, 7, 3),
        (1, 8, 12, 9, 3, 1),
        (4, 20, 14, 14, 7, 3),
    ]
    .iter()
    .enumerate()
    {
        let mut g = Graph::new([c, h, w]);
        let y = g
            .conv(
                "stem",
                0,
                random_conv(&mut rng, c, oc, [k, k], 2, [pad; 4], true, false),
            )
            .unwrap();
        g.relu("stem_relu", y);
        let batch = 1 + 2 * (i % 2);
        let input = random(&mut rng, batch * c * h * w);
        let want = run_graph(&g, &input, batch).swap_remove(g.output);
        for policy in conv_policies(&gpu(), &g, batch, Precision::F32) {
            let got = run_gpu_with(&g, &input, batch, true, policy);
            if let Err(e) = check_close(&got, &want, ATOL, RTOL) {
                panic!("stem {c}->{oc} {h}x{w} k{k} p{pad} batch {batch} with {policy:?}: {e}");
            }
        }
    }
}

/// Long reductions (issue 19): Mesa's llvmpipe silently stops a shader's loops after 65,535
/// iterations in all, so kernels that loop once per term return partial sums there. A global
/// average pool over 1100x1100 positions (once 0.0542 = 65535/1210000 of the mean), a fully
/// connected layer with K = 270,400 (once 262,140 over ones) and a convolution with K = 294,912
/// (32768 channels, 3x3) must match the reference: the engine splits the work on every adapter.
#[test]
fn long_reductions_are_not_truncated() {
    for (i, case) in resnet_wgpu::portability::cases::long_loop_cases(false)
        .unwrap()
        .iter()
        .enumerate()
    {
        let mut rng = SplitMix64(i as u64);
        let [c, h, w] = case.graph.input_shape();
        // Ones show a truncated sum plainly; random values check the indexing.
        for input in [
            vec![1.0f32; case.batch * c * h * w],
            random(&mut rng, case.batch * c * h * w),
        ] {
            let want = run_graph(&case.graph, &input, case.batch).swap_remove(case.graph.output);
            let got = run_gpu(&case.graph, &input, case.batch, false);
            if let Err(e) = check_close(&got, &want, ATOL, RTOL) {
                panic!("{}: {e}", case.name);
            }
        }
    }
}

/// The forced kernels that cannot split their loops refuse such layers with a clear error
/// instead of computing a partial sum: the reference convolution on K = 294,912.
#[test]
fn the_reference_conv_refuses_a_loop_it_cannot_finish() {
    let mut rng = SplitMix64(3);
    let g = resnet_wgpu::portability::cases::conv_graph(
        &mut rng,
        (32768, 4, 3, 3, 3, 1, 1),
        true,
        false,
        false,
    )
    .unwrap();
    let opts = resnet_wgpu::SessionOptions {
        optimize: false,
        conv: ConvPolicy::Reference,
        ..Default::default()
    };
    let e = resnet_wgpu::Session::new(gpu(), g, &opts)
        .err()
        .expect("refused");
    assert!(matches!(e, resnet_wgpu::Error::Unsupported(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("layer 'conv'") && msg.contains("65,535") && msg.contains("tuned kernels"),
        "{msg}"
    );
}

/// NaN propagates (issue 19): `max(x, 0)` gives 0 for NaN on some drivers (lavapipe among them),
/// so a NaN pixel once came out as a confident, finite answer. ReLU, max pool and the conv
/// epilogue's ReLU keep NaN where the reference has it, and only there.
#[test]
fn nan_stays_nan_through_relu_max_pool_and_the_conv_epilogue() {
    let mut rng = SplitMix64(99);
    let [c, h, w] = [5, 9, 9];
    let mut input = random(&mut rng, 2 * c * h * w);
    input[7] = f32::NAN;
    input[c * h * w + 40] = f32::NAN;
    let mut graphs = Vec::new();
    let mut g = Graph::new([c, h, w]);
    g.relu("relu", 0);
    graphs.push(("relu", g));
    let mut g = Graph::new([c, h, w]);
    g.max_pool(
        "pool",
        0,
        MaxPool {
            kernel: [3, 3],
            stride: [2, 2],
            pad: [1; 4],
        },
    )
    .unwrap();
    graphs.push(("max pool", g));
    let mut g = Graph::new([c, h, w]);
    g.conv(
        "conv",
        0,
        random_conv(&mut rng, c, 6, [3, 3], 1, [1; 4], true, true),
    )
    .unwrap();
    graphs.push(("conv + ReLU", g));
    for (what, g) in graphs {
        let want = run_graph(&g, &input, 2).swap_remove(g.output);
        let got = run_gpu(&g, &input, 2, false);
        let nans = want.iter().filter(|v| v.is_nan()).count();
        assert!(
            nans > 0 && nans < want.len(),
            "{what}: the reference has {nans} NaNs"
        );
        for (i, (&a, &b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                a.is_nan(),
                b.is_nan(),
                "{what}, element {i}: got {a}, want {b}"
            );
        }
        let errors =
            resnet_wgpu::portability::compare::compare(&got, &want, ATOL as f64, RTOL as f64);
        assert_eq!(errors.violations, 0, "{what}: {errors:?}");
    }
}
