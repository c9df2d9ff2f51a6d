//! `resnet-wgpu bench --train [--arch NAME] [--batch N] [--iters N] [--profile] [--json]`: the
//! rate of whole training steps (forward in train mode, loss, backward, SGD) on random data,
//! median over the timed steps, and with --profile the time per kernel family of one step.

use anyhow::Result;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::graph::Graph;
use resnet_wgpu::tensor::SplitMix64;
use resnet_wgpu::train::{Hyper, Trainer};
use std::collections::BTreeMap;
use std::time::Instant;

pub fn run(
    ctx: std::sync::Arc<GpuContext>,
    graph: Graph,
    name: &str,
    batch: usize,
    iters: usize,
    profile: bool,
    json: bool,
) -> Result<()> {
    let image: usize = graph.input_shape().iter().product();
    let classes: usize = graph.shape(graph.output).iter().product();
    let mut rng = SplitMix64(7);
    let input = rng.normal_vec(batch * image, 1.0);
    let labels: Vec<usize> = (0..batch).map(|i| i % classes).collect();
    let adapter = ctx.describe();
    let mut trainer = Trainer::new(
        ctx,
        graph,
        batch,
        Hyper {
            lr: 0.01,
            ..Hyper::default()
        },
    )?;
    // The first step builds every pipeline (and lavapipe compiles them).
    trainer.step(&input, &labels)?;
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        trainer.step(&input, &labels)?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let rate = batch as f64 / median;
    let families = if profile {
        let mut by_family: BTreeMap<&str, f64> = BTreeMap::new();
        for (_, family, s) in trainer.profile(&input, &labels)? {
            *by_family.entry(family).or_default() += s;
        }
        let mut rows: Vec<(&str, f64)> = by_family.into_iter().collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        rows
    } else {
        Vec::new()
    };
    if json {
        let fam: serde_json::Map<String, serde_json::Value> = families
            .iter()
            .map(|(f, s)| (f.to_string(), serde_json::json!(s * 1e3)))
            .collect();
        println!(
            "{}",
            serde_json::json!({"model": name, "adapter": adapter, "mode": "train", "batch": batch,
                "iters": iters, "median_step_ms": median * 1e3, "images_per_s": rate,
                "profile_ms": fam})
        );
        return Ok(());
    }
    println!("{name}, training steps (forward, loss, backward, SGD) on {adapter}");
    println!(
        "batch {batch}: median step {:.1} ms over {iters} steps = {rate:.1} images/s",
        median * 1e3
    );
    if profile {
        let total: f64 = families.iter().map(|r| r.1).sum();
        println!("one step, each dispatch alone (submit and wait), by kernel family:");
        for (family, s) in &families {
            println!(
                "  {family:<28} {:>9.1} ms  {:>5.1}%",
                s * 1e3,
                100.0 * s / total
            );
        }
    }
    Ok(())
}
