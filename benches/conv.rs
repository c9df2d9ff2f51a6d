//! Tuned convolution kernels against the plain reference kernel, in the same run, on the layer
//! types of ResNet-50 (224x224, batch 1): `cargo bench --bench conv [-- --iters N] [-- --quick]`.
//!
//! Each layer is a one-conv network (+ bias + ReLU, as after BN folding) run twice: with the
//! tuned kernels (`ConvPolicy::Auto`: register-blocked implicit GEMM, the 1x1 path, Winograd on
//! wide 3x3/1 layers, the stem folded to space-to-depth) and with the reference kernel
//! (`ConvPolicy::Reference`). Times are GPU timestamps around the dispatch (median) where the
//! adapter has them, else wall time per pass; the process CPU time per pass is printed too, since
//! on CPU adapters (lavapipe) it does not change when other programs load the machine.

use resnet_wgpu::ConvPolicy;
use resnet_wgpu::cpu_time::process_cpu_seconds;
use resnet_wgpu::gpu::{GpuContext, GpuOptions};
use resnet_wgpu::graph::{Conv, Graph};
use resnet_wgpu::tensor::{SplitMix64, Tensor};
use resnet_wgpu::{Session, SessionOptions};
use std::sync::Arc;
use std::time::Instant;

struct Layer {
    kind: &'static str,
    ic: usize,
    oc: usize,
    hw: usize,
    k: usize,
    stride: usize,
}

const LAYERS: [Layer; 9] = [
    Layer {
        kind: "stem 7x7/2",
        ic: 3,
        oc: 64,
        hw: 224,
        k: 7,
        stride: 2,
    },
    Layer {
        kind: "3x3/1",
        ic: 64,
        oc: 64,
        hw: 56,
        k: 3,
        stride: 1,
    },
    Layer {
        kind: "3x3/1",
        ic: 256,
        oc: 256,
        hw: 14,
        k: 3,
        stride: 1,
    },
    Layer {
        kind: "3x3/1",
        ic: 512,
        oc: 512,
        hw: 7,
        k: 3,
        stride: 1,
    },
    Layer {
        kind: "3x3/2",
        ic: 128,
        oc: 128,
        hw: 56,
        k: 3,
        stride: 2,
    },
    Layer {
        kind: "1x1/1",
        ic: 256,
        oc: 64,
        hw: 56,
        k: 1,
        stride: 1,
    },
    Layer {
        kind: "1x1/1",
        ic: 1024,
        oc: 256,
        hw: 14,
        k: 1,
        stride: 1,
    },
    Layer {
        kind: "1x1/1",
        ic: 512,
        oc: 2048,
        hw: 7,
        k: 1,
        stride: 1,
    },
    Layer {
        kind: "1x1/2",
        ic: 256,
        oc: 512,
        hw: 56,
        k: 1,
        stride: 2,
    },
];

/// (kernel seconds per pass, CPU seconds per pass) of `g` under `policy`.
fn time(
    ctx: &Arc<GpuContext>,
    g: &Graph,
    input: &[f32],
    policy: ConvPolicy,
    iters: usize,
) -> (f64, Option<f64>) {
    let opts = SessionOptions {
        conv: policy,
        ..Default::default()
    };
    let session = Session::new(ctx.clone(), g.clone(), &opts).expect("session");
    session.run(input).expect("warm-up");
    let cpu0 = process_cpu_seconds();
    let t0 = Instant::now();
    let kernel = if ctx.can_profile() {
        session
            .profile(input, iters)
            .expect("profile")
            .iter()
            .sum::<f64>()
    } else {
        let mut t: Vec<f64> = (0..iters)
            .map(|_| {
                let s = Instant::now();
                session.run(input).expect("run");
                s.elapsed().as_secs_f64()
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let _wall = t0.elapsed();
    let cpu = cpu0
        .zip(process_cpu_seconds())
        .map(|(a, b)| (b - a) / iters as f64);
    (kernel, cpu)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let iters = args
        .iter()
        .position(|a| a == "--iters")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let ctx = GpuContext::new_blocking(&GpuOptions::default()).expect("no GPU adapter");
    println!("adapter: {}", ctx.describe());
    println!(
        "{:<11} {:>18} {:>12} {:>12} {:>9} {:>9} {:>9}",
        "layer", "shape", "tuned ms", "ref ms", "tuned GF", "ref GF", "speed-up"
    );
    let mut rng = SplitMix64(1);
    let mut by_kind: Vec<(&str, f64, f64)> = Vec::new();
    let mut cpu_ratio: Vec<f64> = Vec::new();
    for l in LAYERS.iter().filter(|l| !quick || l.hw <= 56) {
        let pad = l.k / 2;
        let mut g = Graph::new([l.ic, l.hw, l.hw]);
        let fan_in = (l.ic * l.k * l.k) as f32;
        let conv = Conv {
            weight: Tensor::new(
                vec![l.oc, l.ic, l.k, l.k],
                rng.normal_vec(l.oc * l.ic * l.k * l.k, 1.0 / fan_in.sqrt()),
            )
            .unwrap(),
            bias: Some(rng.normal_vec(l.oc, 0.1)),
            stride: [l.stride, l.stride],
            pad: [pad; 4],
            relu: true,
        };
        g.conv("conv", 0, conv).unwrap();
        let input = rng.normal_vec(l.ic * l.hw * l.hw, 1.0);
        let flops = 2.0 * g.macs() as f64;
        let (tuned, tuned_cpu) = time(&ctx, &g, &input, ConvPolicy::Auto, iters);
        let (reference, ref_cpu) = time(&ctx, &g, &input, ConvPolicy::Reference, iters);
        let [oc, oh, ow] = g.output_shape();
        println!(
            "{:<11} {:>18} {:>12.2} {:>12.2} {:>9.2} {:>9.2} {:>8.1}x",
            l.kind,
            format!("{}->{}x{}x{}", l.ic, oc, oh, ow),
            tuned * 1e3,
            reference * 1e3,
            flops / tuned / 1e9,
            flops / reference / 1e9,
            reference / tuned
        );
        if let (Some(a), Some(b)) = (tuned_cpu, ref_cpu) {
            cpu_ratio.push(b / a);
        }
        match by_kind.iter_mut().find(|(k, _, _)| *k == l.kind) {
            Some(e) => {
                e.1 += tuned;
                e.2 += reference;
            }
            None => by_kind.push((l.kind, tuned, reference)),
        }
    }
    println!("\nspeed-up per layer type (total time of its layers):");
    for (kind, tuned, reference) in &by_kind {
        println!("  {kind:<11} {:>6.1}x", reference / tuned);
    }
    if !cpu_ratio.is_empty() {
        let mean = cpu_ratio.iter().map(|r| r.ln()).sum::<f64>() / cpu_ratio.len() as f64;
        println!(
            "  (speed-up in process CPU time per pass, geometric mean over layers: {:.1}x)",
            mean.exp()
        );
    }
}
