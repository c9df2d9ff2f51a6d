//! The autotuner: chooses each convolution's kernel by measurement on the session's own adapter.
//!
//! For every distinct convolution shape of a plan (weights, input and output shapes, batch; the
//! precision is part of the key), the candidates of `plan::conv::candidates` (all of them for
//! [`Tune::Full`], a shortlist for [`Tune::Quick`]) run a synthetic layer of that shape
//! (`probe`), each checked against the first (the default table's choice) so that a kernel a
//! driver miscompiles is never kept; the fastest is written into the plan. Results are cached
//! (`cache`), keyed by adapter, driver, engine version, shape and precision, so that a second
//! start measures nothing.
//!
//! A time budget (`SessionOptions::tune_budget`) bounds a start's measuring: the shapes with the
//! most arithmetic go first, and those left when it is spent keep the default table's kernel and
//! stay out of the cache, so the next start measures them.

pub mod cache;
mod probe;

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::plan::conv::{self, ConvAlgo, ConvShape, winograd_gemm_tile, winograd_tiles};
use crate::plan::{Algo, Plan, Tune};
use std::time::Duration;
use web_time::Instant;

/// What tuning did for one distinct convolution shape.
#[derive(Clone, Debug)]
pub struct ShapeTuning {
    /// The shape.
    pub shape: ConvShape,
    /// The layers of that shape.
    pub layers: Vec<String>,
    /// What the default table would run.
    pub default: ConvAlgo,
    /// What runs.
    pub chosen: ConvAlgo,
    /// Whether the choice came from the cache (nothing measured).
    pub cached: bool,
    /// Seconds per run of each candidate measured, fastest first (empty when cached).
    pub timings: Vec<(ConvAlgo, f64)>,
    /// Candidates refused because their output disagreed with the default's (a driver bug).
    pub rejected: Vec<ConvAlgo>,
    /// Whether the budget ran out before every candidate of this shape was measured (the choice
    /// is the best measured, or the default if none was; not cached, so a later start measures
    /// the shape again).
    pub deferred: bool,
}

/// What tuning a session did.
#[derive(Clone, Debug, Default)]
pub struct TuneReport {
    /// The mode it ran in.
    pub mode: Tune,
    /// One entry per distinct convolution shape, in network order.
    pub shapes: Vec<ShapeTuning>,
    /// Candidates timed in all.
    pub measured: usize,
    /// Wall seconds spent tuning (cache look-ups included).
    pub seconds: f64,
    /// How the candidates were timed: "GPU timestamps" or "submit-and-wait wall time".
    pub timer: &'static str,
    /// The budget the measuring had, if any.
    pub budget: Option<Duration>,
}

impl TuneReport {
    /// Shapes whose choice came from the cache.
    pub fn cached(&self) -> usize {
        self.shapes.iter().filter(|s| s.cached).count()
    }

    /// Shapes the budget left (not or not fully measured; a later start measures them).
    pub fn deferred(&self) -> usize {
        self.shapes.iter().filter(|s| s.deferred).count()
    }

    /// One line for logs and the command line.
    pub fn summary(&self) -> String {
        let changed = self.shapes.iter().filter(|s| s.chosen != s.default).count();
        let deferred = match (self.deferred(), self.budget) {
            (0, _) | (_, None) => String::new(),
            (n, Some(b)) => format!(
                "; the {:.0} s budget left {n} shapes for a later start",
                b.as_secs_f64()
            ),
        };
        format!(
            "tune {}: {} conv shapes ({} from the cache), {} candidates timed by {} in {:.2} s; {} shapes run another kernel than the default table{deferred}",
            self.mode,
            self.shapes.len(),
            self.cached(),
            self.measured,
            self.timer,
            self.seconds,
            changed
        )
    }
}

/// Tunes every convolution step of `plan` in `mode` (nothing for [`Tune::Off`]) and writes the
/// choices into it, measuring for at most `budget` (see the module's comment).
pub async fn tune_plan(
    ctx: &GpuContext,
    plan: &mut Plan,
    mode: Tune,
    budget: Option<Duration>,
) -> Result<TuneReport> {
    let start = Instant::now();
    let deadline = budget.map(|b| start + b);
    let mut report = TuneReport {
        mode,
        timer: probe::timer_name(ctx),
        budget,
        ..Default::default()
    };
    if mode == Tune::Off {
        return Ok(report);
    }
    let precision = plan.precision;
    // Distinct shapes in network order, with their steps.
    let mut shapes: Vec<(ConvShape, Vec<usize>)> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        if let Some(shape) = step.conv {
            match shapes.iter_mut().find(|(s, _)| *s == shape) {
                Some((_, steps)) => steps.push(i),
                None => shapes.push((shape, vec![i])),
            }
        }
    }
    // Measured in order of arithmetic (where the budget buys most), reported in network order.
    let mut order: Vec<usize> = (0..shapes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(shapes[i].0.macs() * shapes[i].1.len() as u64));
    let mut tuned: Vec<Option<ShapeTuning>> = vec![None; shapes.len()];
    for i in order {
        let (shape, steps) = &shapes[i];
        let (shape, steps) = (*shape, steps.clone());
        let Algo::Conv(default) = plan.steps[steps[0]].algo else {
            unreachable!("a step with a conv shape runs a convolution");
        };
        let all = conv::candidates(ctx, &shape, precision);
        let key = cache::key(ctx, &shape, precision);
        let cached = cache::lookup(&key, mode)
            .and_then(|name| all.iter().copied().find(|a| a.describe() == name));
        let (chosen, timings, rejected, deferred) = match cached {
            Some(algo) => (algo, Vec::new(), Vec::new(), false),
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                (default, Vec::new(), Vec::new(), true)
            }
            None => {
                let list = match mode {
                    Tune::Full => with_first(default, all),
                    _ => with_first(default, shortlist(ctx, &shape, &all)),
                };
                let measured =
                    probe::time_candidates(ctx, &shape, precision, &list, mode, deadline).await?;
                report.measured += measured.timings.len() + measured.rejected.len();
                let best = measured.timings.first().map_or(default, |&(a, _)| a);
                if measured.complete {
                    cache::store(&key, mode, &best.describe(), measured.best_seconds());
                }
                (
                    best,
                    measured.timings,
                    measured.rejected,
                    !measured.complete,
                )
            }
        };
        for &i in &steps {
            plan.set_conv_algo(i, chosen)?;
        }
        tuned[i] = Some(ShapeTuning {
            shape,
            layers: steps.iter().map(|&i| plan.steps[i].label.clone()).collect(),
            default,
            chosen,
            cached: cached.is_some(),
            timings,
            rejected,
            deferred,
        });
    }
    report.shapes = tuned.into_iter().flatten().collect();
    cache::save();
    report.seconds = start.elapsed().as_secs_f64();
    log::info!("{}", report.summary());
    Ok(report)
}

/// `first`, then the others of `list` (without `first`).
fn with_first(first: ConvAlgo, list: Vec<ConvAlgo>) -> Vec<ConvAlgo> {
    let mut out = vec![first];
    out.extend(list.into_iter().filter(|&a| a != first));
    out
}

/// The quick mode's candidates among `all`: each workgroup-tiled kernel (the 1x1 form on 1x1
/// layers), split 4 and 16 ways where the layer's output has fewer than 256 tiles of 64x32 (too
/// few workgroups to fill a large GPU), the direct kernels of 16 and 32 channels x 4 pixels
/// (with subgroups where the adapter has 8-lane ones), Winograd's default product tile where it
/// applies, and whatever the loop budget forces.
fn shortlist(ctx: &GpuContext, s: &ConvShape, all: &[ConvAlgo]) -> Vec<ConvAlgo> {
    let few_tiles = s.output[0].div_ceil(64) * s.pixels().div_ceil(32) < 256;
    let (_, _, t) = winograd_tiles(s.output, s.batch);
    let winograd = ConvAlgo::Winograd(winograd_gemm_tile(ctx.subgroup8(), s.output[0], t));
    all.iter()
        .copied()
        .filter(|a| match a {
            ConvAlgo::Tiled { tile, splits } => {
                tile.pointwise == s.is_pointwise()
                    && (*splits == 1
                        || (few_tiles && (*splits == 4 || *splits == 16) && tile.tm4 == 2)
                        || conv::loop_trips(
                            &ConvAlgo::Tiled {
                                tile: *tile,
                                splits: 1,
                            },
                            s,
                        ) > crate::plan::LOOP_BUDGET)
            }
            ConvAlgo::Direct(tile) => {
                tile.px == 4
                    && (tile.tm == 16 || tile.tm == 32)
                    && tile.subgroup8 == ctx.subgroup8()
                    && tile.pointwise == s.is_pointwise()
            }
            ConvAlgo::Winograd(_) => *a == winograd,
            ConvAlgo::SplitK { .. } | ConvAlgo::Reference => false,
        })
        .collect()
}

/// Whether tuning applies to a session: the tuned kernels (a forced policy is kept as given).
pub fn applies(policy: conv::ConvPolicy, mode: Tune) -> bool {
    mode != Tune::Off && policy == conv::ConvPolicy::Auto
}
