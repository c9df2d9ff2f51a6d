//! The autotuner on the test adapter: it measures every distinct convolution shape once, keeps
//! the fastest candidate (and the network's answer), caches the choice so that a second session
//! measures nothing, does not let a quick result answer a full tuning, never tunes a forced
//! policy, and never chooses a kernel whose output is wrong.

mod common;

use common::{check_close, gpu};
use resnet_wgpu::gpu::{GpuContext, GpuOptions, ShaderFault};
use resnet_wgpu::graph::Graph;
use resnet_wgpu::kernels::{Kernel, TiledTile};
use resnet_wgpu::plan::conv::{ConvAlgo, candidates};
use resnet_wgpu::portability::cases::random_conv;
use resnet_wgpu::tensor::SplitMix64;
use resnet_wgpu::tune::cache;
use resnet_wgpu::{ConvPolicy, Precision, Session, SessionOptions, Tune};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The cache is one per process: tests that use it take turns, each with a fresh file.
fn fresh_cache(name: &str) -> (MutexGuard<'static, ()>, std::path::PathBuf) {
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(format!("resnet-wgpu-tune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("tune.json");
    cache::clear();
    cache::use_file(file.clone());
    (turn, file)
}

/// Three convolutions of two distinct shapes (two equal 3x3 layers, a 1x1 stride-2 projection).
fn small_net() -> Graph {
    let mut rng = SplitMix64(11);
    let mut g = Graph::new([24, 13, 11]);
    let a = g
        .conv(
            "a",
            0,
            random_conv(&mut rng, 24, 24, [3, 3], 1, [1; 4], true, true),
        )
        .unwrap();
    let b = g
        .conv(
            "b",
            a,
            random_conv(&mut rng, 24, 24, [3, 3], 1, [1; 4], true, true),
        )
        .unwrap();
    let c = g
        .conv(
            "c",
            b,
            random_conv(&mut rng, 24, 40, [1, 1], 2, [0; 4], true, false),
        )
        .unwrap();
    g.output = c;
    g
}

fn session(ctx: &Arc<GpuContext>, tune: Tune, conv: ConvPolicy) -> Session {
    Session::new(
        ctx.clone(),
        small_net(),
        &SessionOptions {
            batch: 2,
            tune,
            conv,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{tune:?}: {e}"))
}

fn input() -> Vec<f32> {
    SplitMix64(5).normal_vec(2 * 24 * 13 * 11, 1.0)
}

#[test]
fn tuning_keeps_the_fastest_candidate_and_the_answer_and_a_second_start_measures_nothing() {
    let (_turn, file) = fresh_cache("quick");
    let ctx = gpu();
    let fixed = session(&ctx, Tune::Off, ConvPolicy::Auto);
    assert!(fixed.tuning().shapes.is_empty(), "Tune::Off measured");
    let tuned = session(&ctx, Tune::Quick, ConvPolicy::Auto);
    let report = tuned.tuning();
    assert_eq!(report.shapes.len(), 2, "{report:?}");
    assert!(report.measured >= 4, "{}", report.summary());
    assert_eq!(report.cached(), 0);
    for s in &report.shapes {
        let all = candidates(&ctx, &s.shape, Precision::F32);
        assert!(all.contains(&s.chosen), "{:?} is not a candidate", s.chosen);
        assert_eq!(s.chosen, s.timings[0].0, "not the fastest: {:?}", s.timings);
        assert!(s.timings.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(s.timings.iter().any(|(a, _)| *a == s.default));
        assert!(
            s.timings
                .iter()
                .any(|(a, _)| matches!(a, ConvAlgo::Tiled { .. })),
            "quick tuning timed no tiled kernel: {:?}",
            s.timings
        );
    }
    let want = fixed.run(&input()).unwrap().logits;
    let got = tuned.run(&input()).unwrap().logits;
    check_close(&got, &want, 1e-4, 5e-4).unwrap();

    let text = std::fs::read_to_string(&file).expect("the cache file is written");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["entries"].as_object().unwrap().len(), 2, "{text}");

    // A new process would read the file: forget the memory and use the file again.
    cache::clear();
    cache::use_file(file.clone());
    let again = session(&ctx, Tune::Quick, ConvPolicy::Auto);
    assert_eq!(again.tuning().measured, 0, "{}", again.tuning().summary());
    assert_eq!(again.tuning().cached(), 2);
    let chosen = |s: &Session| {
        s.tuning()
            .shapes
            .iter()
            .map(|t| t.chosen)
            .collect::<Vec<_>>()
    };
    assert_eq!(chosen(&again), chosen(&tuned));

    // The browser's way: export, forget, import.
    let export = cache::export_json();
    cache::clear();
    cache::import_json(&export);
    assert_eq!(
        session(&ctx, Tune::Quick, ConvPolicy::Auto)
            .tuning()
            .measured,
        0
    );

    // A quick result does not answer a full tuning; a full one answers both.
    let full = session(&ctx, Tune::Full, ConvPolicy::Auto);
    assert!(
        full.tuning().measured > report.measured,
        "{}",
        full.tuning().summary()
    );
    assert_eq!(
        session(&ctx, Tune::Full, ConvPolicy::Auto)
            .tuning()
            .measured,
        0
    );
    assert_eq!(
        session(&ctx, Tune::Quick, ConvPolicy::Auto)
            .tuning()
            .measured,
        0
    );
}

#[test]
fn a_forced_policy_is_never_tuned() {
    let (_turn, _file) = fresh_cache("forced");
    let s = session(&gpu(), Tune::Full, ConvPolicy::Reference);
    assert!(s.tuning().shapes.is_empty());
    assert_eq!(s.tuning().measured, 0);
}

#[test]
fn a_kernel_that_computes_a_wrong_answer_is_never_chosen() {
    let (_turn, _file) = fresh_cache("fault");
    // A private adapter, with one tiled kernel planted with a bug: every chunk's weights shifted
    // by one vec4.
    let ctx = GpuContext::new_blocking(&GpuOptions::default()).unwrap();
    let broken = TiledTile {
        tm4: 1,
        tn: 4,
        pointwise: false,
        split: false,
    };
    ctx.inject_fault(ShaderFault {
        kernel: Kernel::ConvTiled(broken),
        find: "weight[select(0u, w_base + s0 * 32u + e, ok)]".into(),
        replace: "weight[select(0u, w_base + s0 * 32u + e + 1u, ok)]".into(),
    })
    .unwrap();
    let s = session(&ctx, Tune::Full, ConvPolicy::Auto);
    let bad = ConvAlgo::Tiled {
        tile: broken,
        splits: 1,
    };
    let mut rejected = 0;
    for t in &s.tuning().shapes {
        assert_ne!(t.chosen, bad);
        assert!(t.timings.iter().all(|(a, _)| *a != bad));
        if !t.shape.is_pointwise() {
            assert!(t.rejected.contains(&bad), "{:?}", t.rejected);
            rejected += 1;
        }
    }
    assert_eq!(rejected, 1);
}

#[test]
fn a_spent_budget_keeps_the_default_table_caches_nothing_and_a_later_start_finishes() {
    let (_turn, file) = fresh_cache("budget");
    let ctx = gpu();
    let opts = |budget| SessionOptions {
        batch: 2,
        tune: Tune::Quick,
        tune_budget: budget,
        ..Default::default()
    };
    let spent = Session::new(ctx.clone(), small_net(), &opts(Some(Duration::ZERO))).unwrap();
    let report = spent.tuning();
    assert_eq!(report.shapes.len(), 2, "{report:?}");
    assert_eq!(report.measured, 0, "{}", report.summary());
    assert_eq!(report.deferred(), 2);
    assert!(
        report.summary().contains("left 2 shapes"),
        "{}",
        report.summary()
    );
    for s in &report.shapes {
        assert!(s.deferred && !s.cached && s.timings.is_empty());
        assert_eq!(s.chosen, s.default);
    }
    let entries = |file: &std::path::Path| {
        std::fs::read_to_string(file).map_or(0, |text| {
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            json["entries"].as_object().map_or(0, |e| e.len())
        })
    };
    assert_eq!(entries(&file), 0, "a deferred shape was cached");
    let fixed = session(&ctx, Tune::Off, ConvPolicy::Auto);
    check_close(
        &spent.run(&input()).unwrap().logits,
        &fixed.run(&input()).unwrap().logits,
        0.0,
        0.0,
    )
    .unwrap();

    // The next start has no budget: it measures both shapes and caches them.
    let later = Session::new(ctx.clone(), small_net(), &opts(None)).unwrap();
    assert_eq!(later.tuning().deferred(), 0);
    assert_eq!(later.tuning().cached(), 0);
    assert!(later.tuning().measured >= 4, "{}", later.tuning().summary());
    assert_eq!(entries(&file), 2);
}
