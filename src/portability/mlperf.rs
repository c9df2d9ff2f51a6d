//! MLPerf Inference-style figures of one adapter, on the embedded default model (ResNet-20 trained
//! on Fashion-MNIST): SingleStream (one image per query, latency percentiles), Offline (throughput
//! at the batch size that maximises it, found by the run) and MLPerf's accuracy rule in spirit:
//! top-1 on the real test set within 0.1 point of the f32 CPU reference's, in f32 and, where the
//! adapter has SHADER_F16, in f16. In the spirit of MLPerf, not its rules: no LoadGen, no
//! minimum duration, one model.

use super::{Check, Status};
use crate::dataset::Dataset;
use crate::evaluate::{top1_accuracy, top1_predictions};
use crate::gpu::GpuContext;
use crate::graph::Graph;
use crate::model::default::{DEFAULT_MODEL_NAME, default_model};
use crate::precision::Precision;
use crate::preprocess::Preprocess;
use crate::session::{Session, SessionOptions};
use serde::Serialize;
use std::sync::Arc;
use web_time::Instant;

/// SingleStream queries: 1024 (MLPerf's SingleStream minimum), 256 in the quick suite. A query
/// of the default model takes 10-15 ms on Mesa 25.0.7's lavapipe and 35-50 ms on 22.3.6's
/// (2 cores shared with other work). The nearest-rank p90 of N queries sits within about
/// sqrt(0.09 N) ranks of the true one: +-10 of 1024 (1% of the distribution), +-5 of 256; p99 of
/// 256 is the third-slowest query, so it is the noisy one. Run to run, p90 moved by 25% on the
/// busy machine, which is the machine's noise, not the sample's.
pub fn single_stream_queries(quick: bool) -> usize {
    if quick { 256 } else { 1024 }
}

/// The Offline search doubles the batch from 1 up to this, and stops at the first batch that is
/// slower than the best so far.
pub const OFFLINE_MAX_BATCH: usize = 256;

/// Each Offline batch runs at least this long (and at least twice) after a warm-up run.
const OFFLINE_MIN_SECONDS: f64 = 0.25;

/// Test images of the accuracy rule: all 10,000 (MLPerf's rule: the whole set), or the first
/// 500 in the quick suite, where 0.1 point is under one image, so the quick rule wants the
/// reference's count exactly (a driver and the fixed kernel table give the same classes run
/// after run, so this is no coin toss; every run here agreed with the reference on all of the
/// first 1,000 images, in f32 and f16). Measured on 2 busy cores: the whole set took 65 s in f32
/// and 140 s in f16 on Mesa 25.0.7's lavapipe, ~4x that on 22.3.6's, and 1,000 images 160 s on
/// llvmpipe's GL: too long for CI; tests/default_model.rs checks f32 on all 10,000.
pub fn accuracy_images(quick: bool) -> usize {
    if quick { 500 } else { 10_000 }
}

/// How far (in percentage points) the adapter's top-1 may be from the reference's.
pub const ACCURACY_TOLERANCE_PT: f64 = 0.1;

/// Latency of one image at a time.
#[derive(Clone, Debug, Serialize)]
pub struct SingleStream {
    /// Queries timed (after two warm-up queries).
    pub queries: usize,
    /// Median latency of a query (upload, dispatches, read-back), milliseconds.
    pub p50_ms: f64,
    /// 90th percentile (nearest rank), milliseconds.
    pub p90_ms: f64,
    /// 99th percentile (nearest rank), milliseconds.
    pub p99_ms: f64,
}

/// Throughput at one batch size.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BatchThroughput {
    /// Images per forward pass.
    pub batch: usize,
    /// Images per second over whole runs.
    pub images_per_s: f64,
}

/// Throughput at the batch size that maximised it.
#[derive(Clone, Debug, Serialize)]
pub struct Offline {
    /// The best batch size found.
    pub batch: usize,
    /// Its throughput, images per second.
    pub images_per_s: f64,
    /// Every batch size tried, in order (powers of two from 1).
    pub tried: Vec<BatchThroughput>,
}

/// Top-1 on the real test set against the reference's.
#[derive(Clone, Debug, Serialize)]
pub struct Accuracy {
    /// Test images classified.
    pub images: usize,
    /// The f32 CPU reference's top-1 on them, percent.
    pub reference_top1_pct: f64,
    /// This adapter's top-1 with f32 convolutions, percent.
    pub f32_top1_pct: Option<f64>,
    /// With f16 convolutions, percent (adapters with SHADER_F16).
    pub f16_top1_pct: Option<f64>,
    /// The allowed distance from the reference, percentage points.
    pub tolerance_pt: f64,
}

/// Everything MLPerf-like measured on one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct MlPerf {
    /// The model measured.
    pub model: String,
    /// SingleStream latency (none if it could not run: see the report's checks).
    pub single_stream: Option<SingleStream>,
    /// Offline throughput.
    pub offline: Option<Offline>,
    /// The accuracy rule (none without the test set).
    pub accuracy: Option<Accuracy>,
}

/// The real test set and the reference's predictions on it.
pub struct AccuracySet {
    /// Fashion-MNIST's 10,000 test images and labels.
    pub data: Dataset,
    /// The f32 CPU reference's class for each image.
    pub reference: Vec<usize>,
}

impl AccuracySet {
    /// The test set in `dataset_dir` (IDX .gz files) and the reference predictions in
    /// `predictions` (an int64 .npy: PyTorch's f32 CPU predictions of the default model,
    /// tests/fixtures/default_model/fmnist_test_preds.npy).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(
        dataset_dir: &std::path::Path,
        predictions: &std::path::Path,
    ) -> anyhow::Result<Self> {
        use anyhow::{Context, ensure};
        let data = crate::dataset::load_fashion_mnist_test(dataset_dir)?;
        let bytes = std::fs::read(predictions)
            .with_context(|| format!("{}: cannot read", predictions.display()))?;
        let reference: Vec<i64> = npyz::NpyFile::new(&bytes[..])
            .and_then(|f| f.into_vec())
            .with_context(|| format!("{}: not an int64 .npy file", predictions.display()))?;
        ensure!(
            reference.len() == data.len(),
            "{}: {} predictions for {} test images",
            predictions.display(),
            reference.len(),
            data.len()
        );
        let reference = reference
            .into_iter()
            .map(|p| usize::try_from(p).context("a negative class"))
            .collect::<anyhow::Result<_>>()
            .with_context(|| predictions.display().to_string())?;
        Ok(Self { data, reference })
    }
}

/// What the suite has for the accuracy rule.
#[derive(Clone, Default)]
pub enum AccuracyData {
    /// Not asked for (the browser, which has no test set).
    #[default]
    NotGiven,
    /// Asked for, but the files could not be read: why.
    Unavailable(String),
    /// Loaded.
    Ready(Arc<AccuracySet>),
}

/// The nearest-rank `q`-quantile of sorted, non-empty `sorted`.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn check(name: String, status: Status, time_ms: Option<f64>, detail: String) -> Check {
    Check {
        category: "mlperf".into(),
        name,
        status,
        errors: None,
        tolerance: "-".into(),
        time_ms,
        detail: Some(detail),
    }
}

/// A session of `graph` as `base` asks, at `batch`.
async fn session(
    ctx: &Arc<GpuContext>,
    graph: &Graph,
    batch: usize,
    base: &SessionOptions,
) -> crate::Result<Session> {
    let opts = SessionOptions {
        batch,
        ..base.clone()
    };
    Session::new_async(ctx.clone(), graph.clone(), &opts).await
}

/// A deterministic input of `images` images (latency does not depend on the pixels).
fn input(session: &Session, images: usize) -> Vec<f32> {
    let per_image: usize = session.input_shape().iter().product();
    (0..per_image * images)
        .map(|i| (i % 97) as f32 / 97.0 - 0.5)
        .collect()
}

/// SingleStream: `queries` runs of one image each, after two warm-up runs.
pub async fn single_stream(
    ctx: &Arc<GpuContext>,
    graph: &Graph,
    queries: usize,
    base: &SessionOptions,
) -> crate::Result<SingleStream> {
    let s = session(ctx, graph, 1, base).await?;
    let x = input(&s, 1);
    for _ in 0..2 {
        s.run_async(&x).await?;
    }
    let mut times = Vec::with_capacity(queries);
    for _ in 0..queries.max(1) {
        let t = Instant::now();
        s.run_async(&x).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(SingleStream {
        queries: times.len(),
        p50_ms: percentile(&times, 0.5),
        p90_ms: percentile(&times, 0.9),
        p99_ms: percentile(&times, 0.99),
    })
}

/// Throughput at batch sizes 1, 2, 4, ... up to `max_batch`, stopping after the first that is
/// slower than the best so far (or that cannot be planned, when the best so far stands).
pub async fn offline(
    ctx: &Arc<GpuContext>,
    graph: &Graph,
    max_batch: usize,
    base: &SessionOptions,
) -> crate::Result<Offline> {
    let mut tried: Vec<BatchThroughput> = Vec::new();
    let mut batch = 1;
    while batch <= max_batch {
        let s = match session(ctx, graph, batch, base).await {
            Ok(s) => s,
            Err(e) if !tried.is_empty() => {
                log::info!("offline search stops before batch {batch}: {e}");
                break;
            }
            Err(e) => return Err(e),
        };
        let x = input(&s, batch);
        s.run_async(&x).await?;
        let (start, mut runs) = (Instant::now(), 0usize);
        while runs < 2 || start.elapsed().as_secs_f64() < OFFLINE_MIN_SECONDS {
            s.run_async(&x).await?;
            runs += 1;
        }
        let images_per_s = (runs * batch) as f64 / start.elapsed().as_secs_f64();
        let best = tried.iter().map(|t| t.images_per_s).fold(0.0, f64::max);
        tried.push(BatchThroughput {
            batch,
            images_per_s,
        });
        if images_per_s < best {
            break;
        }
        batch *= 2;
    }
    let best = *tried
        .iter()
        .max_by(|a, b| a.images_per_s.total_cmp(&b.images_per_s))
        .expect("batch 1 was measured");
    Ok(Offline {
        batch: best.batch,
        images_per_s: best.images_per_s,
        tried,
    })
}

/// Top-1 percent of the adapter on the first `images` test images at `batch`, in `precision`,
/// and on how many it agrees with the reference.
async fn top1(
    ctx: &Arc<GpuContext>,
    graph: &Graph,
    pre: &Preprocess,
    set: &AccuracySet,
    images: usize,
    batch: usize,
    precision: Precision,
) -> crate::Result<(f64, usize)> {
    let opts = SessionOptions {
        precision,
        ..Default::default()
    };
    let s = session(ctx, graph, batch, &opts).await?;
    let p = top1_predictions(&s, &set.data, pre, images, &mut |_| {}).await?;
    let agree = p.iter().zip(&set.reference).filter(|(a, b)| a == b).count();
    Ok((100.0 * top1_accuracy(&p, &set.data.labels[..images]), agree))
}

/// Measures SingleStream, Offline and (with `accuracy`) the accuracy rule on `ctx`; each
/// becomes a check (`record`), so a figure that could not be measured is a FAIL with its reason.
pub async fn measure(
    ctx: &Arc<GpuContext>,
    quick: bool,
    accuracy: &AccuracyData,
    record: &mut dyn FnMut(Check),
) -> MlPerf {
    let mut figures = MlPerf {
        model: DEFAULT_MODEL_NAME.into(),
        single_stream: None,
        offline: None,
        accuracy: None,
    };
    let (graph, pre) = match default_model().and_then(|m| {
        let pre = Preprocess::for_model(&m);
        Ok((m.into_graph_for(pre.output_shape())?, pre))
    }) {
        Ok(x) => x,
        Err(e) => {
            record(check(
                "the default model".into(),
                Status::Fail,
                None,
                format!("{e:#}"),
            ));
            return figures;
        }
    };
    let queries = single_stream_queries(quick);
    let name = format!("SingleStream, {queries} queries of 1 image");
    let base = SessionOptions::default();
    match single_stream(ctx, &graph, queries, &base).await {
        Ok(s) => {
            record(check(
                name,
                Status::Pass,
                Some(s.p90_ms),
                format!(
                    "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms (time: p90)",
                    s.p50_ms, s.p90_ms, s.p99_ms
                ),
            ));
            figures.single_stream = Some(s);
        }
        Err(e) => record(check(name, Status::Fail, None, format!("{e:#}"))),
    }
    let name = format!("Offline, best batch of 1..{OFFLINE_MAX_BATCH}");
    match offline(ctx, &graph, OFFLINE_MAX_BATCH, &base).await {
        Ok(o) => {
            let tried: Vec<String> = o
                .tried
                .iter()
                .map(|t| format!("{}: {:.0}", t.batch, t.images_per_s))
                .collect();
            record(check(
                name,
                Status::Pass,
                Some(1e3 * o.batch as f64 / o.images_per_s),
                format!(
                    "{:.1} images/s at batch {} (images/s by batch: {}; time: one pass)",
                    o.images_per_s,
                    o.batch,
                    tried.join(", ")
                ),
            ));
            figures.offline = Some(o);
        }
        Err(e) => record(check(name, Status::Fail, None, format!("{e:#}"))),
    }
    let set = match accuracy {
        AccuracyData::Ready(set) => set,
        AccuracyData::NotGiven | AccuracyData::Unavailable(_) => {
            let why = match accuracy {
                AccuracyData::Unavailable(why) => why.clone(),
                _ => "no test set here".into(),
            };
            record(check(
                "accuracy: top-1 on Fashion-MNIST vs the f32 CPU reference".into(),
                Status::NotApplicable,
                None,
                why,
            ));
            return figures;
        }
    };
    let images = accuracy_images(quick).min(set.data.len());
    let reference = 100.0 * top1_accuracy(&set.reference[..images], &set.data.labels);
    let mut acc = Accuracy {
        images,
        reference_top1_pct: reference,
        f32_top1_pct: None,
        f16_top1_pct: None,
        tolerance_pt: ACCURACY_TOLERANCE_PT,
    };
    // The accuracy run uses the Offline scenario's batch, as MLPerf's accuracy mode runs the
    // scenario it checks.
    let batch = figures.offline.as_ref().map_or(64, |o| o.batch);
    let has_f16 = ctx.features.contains(wgpu::Features::SHADER_F16);
    for precision in [Precision::F32, Precision::F16] {
        let name = format!(
            "accuracy {}: top-1 on {images} Fashion-MNIST test images vs the f32 CPU reference",
            precision.name()
        );
        if precision == Precision::F16 && !has_f16 {
            record(check(
                name,
                Status::NotApplicable,
                None,
                "adapter lacks SHADER_F16".into(),
            ));
            continue;
        }
        let t = Instant::now();
        match top1(ctx, &graph, &pre, set, images, batch, precision).await {
            Ok((pct, agree)) => {
                let off = (pct - reference).abs();
                // A hair of slack over the rule: percentages of 10,000 images are exact to
                // 1e-12, not to the last bit.
                let ok = off <= ACCURACY_TOLERANCE_PT + 1e-9;
                record(check(
                    name,
                    if ok { Status::Pass } else { Status::Fail },
                    Some(t.elapsed().as_secs_f64() * 1e3),
                    format!(
                        "{pct:.2}% vs reference {reference:.2}% ({off:.2} pt, allowed {ACCURACY_TOLERANCE_PT} pt); same class as the reference on {agree} of {images} images; batch {batch}; time: the whole run"
                    ),
                ));
                match precision {
                    Precision::F32 => acc.f32_top1_pct = Some(pct),
                    _ => acc.f16_top1_pct = Some(pct),
                }
            }
            Err(e) => record(check(name, Status::Fail, None, format!("{e:#}"))),
        }
    }
    figures.accuracy = Some(acc);
    figures
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.9), 90.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v[..1], 0.99), 1.0);
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        // ceil(0.9 * 7) = 7th, ceil(0.5 * 7) = 4th.
        assert_eq!((percentile(&w, 0.5), percentile(&w, 0.9)), (4.0, 7.0));
    }
}
