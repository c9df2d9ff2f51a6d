//! The one place that decides how each convolution runs: which algorithm, which tile, how many
//! K splits. [`choose`] applies a [`ConvPolicy`] (the default table, or a forced kernel for tests
//! and benchmarks); [`candidates`] lists every algorithm that can run a layer on an adapter (what
//! the kernel tests sweep and the tuner times). Both respect the adapter's limits and
//! `plan::LOOP_BUDGET`.

use super::LOOP_BUDGET;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::graph::{Conv, Shape};
use crate::kernels::conv_tiled::STEPS_PER_CHUNK;
use crate::kernels::{ConvTile, TiledTile};
use crate::layout::blocked_len;
use crate::precision::Precision;

/// Which convolution kernels a session uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvPolicy {
    /// The tuned kernels, chosen per layer by the default table (see [`default_algo`]).
    #[default]
    Auto,
    /// The plain reference kernel everywhere (the yardstick).
    Reference,
    /// One direct variant for every layer (tests, benchmarks). `pointwise: true` uses the 1x1
    /// variant on the layers it fits and the general one elsewhere; `false` never uses it.
    Tile(ConvTile),
    /// Winograd F(2x2, 3x3) on every 3x3 stride-1 layer, the tile elsewhere (tests, benchmarks).
    Winograd(ConvTile),
    /// Split-K with this tile and this many splits (at least; more if the loop budget needs them)
    /// on every layer (tests, benchmarks).
    SplitK(ConvTile, u32),
    /// Exactly this algorithm on every convolution, an error where it cannot run (the kernel
    /// tests run each of [`candidates`] this way).
    Force(ConvAlgo),
}

/// How one convolution runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvAlgo {
    /// shaders/conv_reference.wgsl.
    Reference,
    /// One generated direct kernel (`kernels::conv_direct`).
    Direct(ConvTile),
    /// A split direct kernel whose `splits` partial sums shaders/split_reduce.wgsl adds up.
    SplitK {
        /// The split kernel's tile (`split` set).
        tile: ConvTile,
        /// Ranges of input channels summed separately.
        splits: u32,
    },
    /// Winograd F(2x2, 3x3): input transform, 16 batched 1x1 products with this tile, output
    /// transform.
    Winograd(ConvTile),
    /// A workgroup-tiled kernel (`kernels::conv_tiled`), f32; with `splits` > 1 (and the tile's
    /// `split` set) its partial sums are added up by shaders/split_reduce.wgsl.
    Tiled {
        /// The tile.
        tile: TiledTile,
        /// Ranges of the K loop summed separately (1: not split).
        splits: u32,
    },
}

impl ConvAlgo {
    /// A short description for profiles and reports.
    pub fn describe(&self) -> String {
        match self {
            ConvAlgo::Reference => "reference".into(),
            ConvAlgo::Direct(t) => t.name(),
            ConvAlgo::SplitK { tile, splits } => format!("{} x{splits}", tile.name()),
            ConvAlgo::Winograd(t) => format!("winograd {}", t.name()),
            ConvAlgo::Tiled { tile, splits: 1 } => tile.name(),
            ConvAlgo::Tiled { tile, splits } => format!("{} x{splits}", tile.name()),
        }
    }
}

/// The layer a convolution algorithm is chosen for: its weights' shape, input and output
/// shapes, and the images per pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    /// Input channels.
    pub in_c: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride in y and x.
    pub stride: [usize; 2],
    /// Padding: top, left, bottom, right.
    pub pad: [usize; 4],
    /// Per-image input shape.
    pub input: Shape,
    /// Per-image output shape.
    pub output: Shape,
    /// Images per pass.
    pub batch: usize,
}

impl ConvShape {
    /// The layer of `conv` on input `input`, output `output`, `batch` images a pass.
    pub fn of(conv: &Conv, input: Shape, output: Shape, batch: usize) -> Self {
        Self {
            in_c: conv.in_channels(),
            kernel: conv.kernel(),
            stride: conv.stride,
            pad: conv.pad,
            input,
            output,
            batch,
        }
    }

    fn in_c4(&self) -> usize {
        self.in_c.div_ceil(4)
    }

    /// A 1x1 kernel without padding: the pointwise variant applies (any stride).
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.pad == [0; 4]
    }

    /// Winograd F(2x2, 3x3) computes exactly this layer: 3x3, stride 1.
    pub fn winograd_applies(&self) -> bool {
        self.kernel == [3, 3] && self.stride == [1, 1]
    }

    /// Output pixels across the batch.
    pub fn pixels(&self) -> usize {
        self.batch * self.output[1] * self.output[2]
    }

    /// Multiply-accumulates of the whole layer for the batch.
    pub fn macs(&self) -> u64 {
        let [oc, oh, ow] = self.output;
        (self.batch * oc * oh * ow * self.in_c * self.kernel[0] * self.kernel[1]) as u64
    }

    /// Steps of the tiled kernels' K loop: every window position x every input channel block.
    pub fn steps(&self) -> usize {
        self.kernel[0] * self.kernel[1] * self.in_c4()
    }

    /// Loop iterations (back edges) of one invocation of the direct kernel summing `c4` input
    /// channel blocks of every window position.
    fn direct_trips(&self, tile: &ConvTile, c4: usize) -> u64 {
        let [kh, kw] = self.kernel;
        if tile.pointwise {
            c4 as u64
        } else {
            (kh * kw * c4 + kh * kw + kh) as u64
        }
    }

    /// The fewest splits that keep one invocation of a split `tile` within the loop budget, or
    /// `None` if even one channel block per split passes it (an absurd window).
    fn min_splits(&self, tile: &ConvTile) -> Option<u32> {
        if self.direct_trips(tile, 1) > LOOP_BUDGET {
            return None;
        }
        let per = (1..=self.in_c4())
            .rev()
            .find(|&c| self.direct_trips(tile, c) <= LOOP_BUDGET)?;
        Some(self.in_c4().div_ceil(per) as u32)
    }
}

/// Output channels per tile of the direct kernels for a layer of `oc` channels.
pub fn channel_tile(oc: usize) -> u32 {
    if oc.is_multiple_of(32) || oc >= 128 {
        32
    } else if oc > 8 {
        16
    } else {
        8
    }
}

/// The Winograd product tile for a layer of `out_c` channels and `t` 2x2 output tiles.
pub fn winograd_gemm_tile(subgroup8: bool, out_c: usize, t: usize) -> ConvTile {
    ConvTile {
        tm: channel_tile(out_c),
        px: if t <= 16 { 2 } else { 4 },
        pointwise: true,
        subgroup8,
        batched: true,
        split: false,
    }
}

/// 2x2 output tiles of a batch: (tiles_h, tiles_w, all tiles of the batch).
pub fn winograd_tiles(out: Shape, batch: usize) -> (usize, usize, usize) {
    let (th, tw) = (out[1].div_ceil(2), out[2].div_ceil(2));
    (th, tw, batch * th * tw)
}

/// Floats of Winograd's two temporaries (transformed input, products).
pub fn winograd_scratch_floats(s: &ConvShape) -> [usize; 2] {
    let (_, _, t) = winograd_tiles(s.output, s.batch);
    [16 * s.in_c4() * 4 * t, 16 * s.output[0].div_ceil(4) * 4 * t]
}

/// Bytes of each temporary an algorithm needs.
pub fn scratch_bytes(algo: &ConvAlgo, s: &ConvShape) -> Vec<u64> {
    match algo {
        ConvAlgo::Reference | ConvAlgo::Direct(_) => Vec::new(),
        ConvAlgo::SplitK { splits, .. } | ConvAlgo::Tiled { splits, .. } if *splits > 1 => {
            vec![*splits as u64 * (s.batch * blocked_len(s.output)) as u64 * 4]
        }
        ConvAlgo::SplitK { .. } | ConvAlgo::Tiled { .. } => Vec::new(),
        ConvAlgo::Winograd(_) => winograd_scratch_floats(s)
            .iter()
            .map(|&f| f as u64 * 4)
            .collect(),
    }
}

/// Loop iterations of the longest-running invocation of an algorithm (all its kernels).
pub fn loop_trips(algo: &ConvAlgo, s: &ConvShape) -> u64 {
    let [kh, kw] = s.kernel;
    match algo {
        ConvAlgo::Reference => (s.in_c * kh * kw + s.in_c * kh + s.in_c) as u64,
        ConvAlgo::Direct(t) => s.direct_trips(t, s.in_c4()),
        ConvAlgo::SplitK { tile, splits } => s
            .direct_trips(tile, s.in_c4().div_ceil(*splits as usize))
            .max(*splits as u64),
        ConvAlgo::Winograd(_) => s.in_c4() as u64,
        ConvAlgo::Tiled { splits, .. } => {
            let chunks = s
                .steps()
                .div_ceil(*splits as usize)
                .div_ceil(STEPS_PER_CHUNK as usize);
            (chunks as u64).max(*splits as u64)
        }
    }
}

/// Whether `algo` can run layer `s` on `ctx`: features, tile validity, loop budget, and every
/// temporary within one storage binding.
pub fn runs_on(ctx: &GpuContext, algo: &ConvAlgo, s: &ConvShape) -> bool {
    check(ctx, "", algo, s).is_ok()
}

/// [`runs_on`], saying why not: the error names layer `name`.
pub fn check(ctx: &GpuContext, name: &str, algo: &ConvAlgo, s: &ConvShape) -> Result<()> {
    let unsupported = |why: String| {
        Err(Error::Unsupported(format!(
            "layer '{name}': {} {why}",
            algo.describe()
        )))
    };
    if let ConvAlgo::Tiled { tile, splits } = algo {
        let splits_ok = if tile.split {
            *splits >= 2 && (*splits as usize) <= s.steps()
        } else {
            *splits == 1
        };
        if !tile.is_valid() || !splits_ok || (tile.pointwise && !s.is_pointwise()) {
            return unsupported("does not apply to this layer".into());
        }
    }
    let tile = match algo {
        ConvAlgo::Reference | ConvAlgo::Tiled { .. } => None,
        ConvAlgo::Direct(t) | ConvAlgo::SplitK { tile: t, .. } | ConvAlgo::Winograd(t) => Some(t),
    };
    if let Some(t) = tile {
        let variant_ok = match algo {
            ConvAlgo::Direct(t) => !t.split && !t.batched,
            ConvAlgo::SplitK { tile, splits } => {
                tile.split && *splits >= 2 && (*splits as usize) <= s.in_c4()
            }
            ConvAlgo::Winograd(t) => t.batched && s.winograd_applies(),
            ConvAlgo::Reference | ConvAlgo::Tiled { .. } => true,
        };
        if !t.is_valid() || !variant_ok || (t.pointwise && !t.batched && !s.is_pointwise()) {
            return unsupported("does not apply to this layer".into());
        }
        if t.subgroup8 && !ctx.subgroup8() {
            return unsupported(format!(
                "needs 8-lane subgroups, which adapter '{}' does not have",
                ctx.info.name
            ));
        }
    }
    if let ConvAlgo::SplitK { splits, .. } | ConvAlgo::Tiled { splits, .. } = algo
        && *splits > ctx.limits.max_compute_workgroups_per_dimension
    {
        return unsupported("has more splits than the adapter's dispatch limit".to_string());
    }
    let trips = loop_trips(algo, s);
    if trips > LOOP_BUDGET {
        let [kh, kw] = s.kernel;
        return unsupported(format!(
            "({} input channels, {kh}x{kw} window) would loop {trips} times in one GPU invocation, more than the {LOOP_BUDGET} some drivers run (Mesa's llvmpipe stops at 65,535 silently){}",
            s.in_c,
            if *algo == ConvAlgo::Reference {
                "; use the tuned kernels, which split the work"
            } else {
                ""
            }
        ));
    }
    for need in scratch_bytes(algo, s) {
        if need > ctx.max_binding() || need / 16 > u32::MAX as u64 {
            return Err(Error::AdapterLimit {
                layer: name.to_string(),
                limit: "max_storage_buffer_binding_size",
                need,
                allowed: ctx.max_binding(),
                message: format!(
                    "layer '{name}': {} needs a {need}-byte temporary but adapter '{}' allows {} bytes per storage binding (max_storage_buffer_binding_size); use a smaller input or batch",
                    algo.describe(),
                    ctx.info.name,
                    ctx.max_binding()
                ),
            });
        }
    }
    Ok(())
}

/// Every algorithm that can run layer `s` on `ctx`: the reference kernel, each direct tile of
/// [`ConvTile::catalog`] that suits the layer, split-K with 2 and 4 splits (and whatever the
/// loop budget needs), Winograd where it applies, and in f32 each tiled kernel of
/// [`TiledTile::catalog`], whole and split 4 and 16 ways (and whatever the loop budget needs).
/// The kernel tests run each of these; the tuner times them.
pub fn candidates(ctx: &GpuContext, s: &ConvShape, precision: Precision) -> Vec<ConvAlgo> {
    let mut out = Vec::new();
    if precision == Precision::F32 {
        out.push(ConvAlgo::Reference);
    }
    for tile in ConvTile::catalog() {
        let algos: Vec<ConvAlgo> = if tile.batched {
            vec![ConvAlgo::Winograd(tile)]
        } else if tile.split {
            let mut splits = vec![2, 4];
            splits.extend(s.min_splits(&tile));
            splits.sort_unstable();
            splits.dedup();
            splits
                .into_iter()
                .map(|splits| ConvAlgo::SplitK { tile, splits })
                .collect()
        } else {
            vec![ConvAlgo::Direct(tile)]
        };
        out.extend(algos.into_iter().filter(|a| runs_on(ctx, a, s)));
    }
    if precision == Precision::F32 {
        for tile in TiledTile::catalog() {
            let splits = if tile.split {
                let mut splits = vec![4, 16];
                splits.extend(tiled_min_splits(s));
                splits.sort_unstable();
                splits.dedup();
                splits
            } else {
                vec![1]
            };
            out.extend(
                splits
                    .into_iter()
                    .map(|splits| ConvAlgo::Tiled { tile, splits })
                    .filter(|a| runs_on(ctx, a, s)),
            );
        }
    }
    out
}

/// The fewest splits that keep a tiled kernel's K loop within the loop budget (`None` when one
/// split suffices).
fn tiled_min_splits(s: &ConvShape) -> Option<u32> {
    let chunks = s.steps().div_ceil(STEPS_PER_CHUNK as usize) as u64;
    (chunks > LOOP_BUDGET).then(|| chunks.div_ceil(LOOP_BUDGET) as u32)
}

/// The default table: the direct tile per layer from the adapter's subgroup size, Winograd for
/// wide 3x3 layers on 8-lane adapters, split-K where the K loop would pass the loop budget.
/// Measured on lavapipe (8 lanes, AVX-512, 2 cores; process CPU time over ResNet-50's 1x1,
/// 3x3/2 and stem shapes): 32 channels x 4 pixels per lane beats 16 x 4 by 10-40% although
/// its 128 accumulators spill (each loaded pixel feeds 32 channels, and loads are what costs),
/// and beats 24 x 4, 32 x 6 and 32 x 8 (which collapses). Narrow layers get 16 or 8 channels
/// rather than a padded tile. 2 pixels per lane only for tiny maps: on 7x7 layers 4 measured
/// 1.5x faster in spite of the quarter wasted in the last tile. Without 8-lane subgroups (real
/// GPUs: one thread per invocation, registers per thread are the limit) 16 x 4 keeps the
/// accumulators in registers.
pub fn default_algo(ctx: &GpuContext, s: &ConvShape) -> ConvAlgo {
    let subgroup8 = ctx.subgroup8();
    let oc = s.output[0];
    // Winograd, measured on lavapipe (process CPU time, examples of ResNet layers): 1.2-1.7x
    // faster from 64 channels on when the layer is big enough; slower on narrow or tiny layers
    // (16-32 channels, or 64 channels on 8x8 at batch 1), where the two extra passes and
    // dispatches cost more than the saved multiplies.
    if subgroup8 && s.winograd_applies() && s.in_c >= 64 && oc >= 64 && s.macs() >= 20_000_000 {
        let (_, _, t) = winograd_tiles(s.output, s.batch);
        let w = ConvAlgo::Winograd(winograd_gemm_tile(true, oc, t));
        if runs_on(ctx, &w, s) {
            return w;
        }
    }
    let tile = ConvTile {
        tm: if subgroup8 {
            channel_tile(oc)
        } else {
            channel_tile(oc).min(16)
        },
        px: if s.pixels() < 16 { 2 } else { 4 },
        pointwise: s.is_pointwise(),
        subgroup8,
        batched: false,
        split: false,
    };
    fit_loop_budget(ConvAlgo::Direct(tile), s)
}

/// `algo`, or its split-K form with the fewest splits if its K loop would pass the loop budget.
fn fit_loop_budget(algo: ConvAlgo, s: &ConvShape) -> ConvAlgo {
    match algo {
        ConvAlgo::Direct(tile) if loop_trips(&algo, s) > LOOP_BUDGET => {
            let tile = ConvTile {
                split: true,
                ..tile
            };
            match s.min_splits(&tile) {
                Some(splits) => ConvAlgo::SplitK { tile, splits },
                None => algo,
            }
        }
        other => other,
    }
}

/// The algorithm `policy` gives layer `name` of shape `s` in `precision`, checked against the
/// adapter.
pub fn choose(
    ctx: &GpuContext,
    name: &str,
    s: &ConvShape,
    policy: ConvPolicy,
    precision: Precision,
) -> Result<ConvAlgo> {
    let pointwise = s.is_pointwise();
    let direct = |t: ConvTile| {
        ConvAlgo::Direct(ConvTile {
            pointwise: t.pointwise && pointwise,
            batched: false,
            split: false,
            ..t
        })
    };
    let algo = match policy {
        ConvPolicy::Auto => default_algo(ctx, s),
        ConvPolicy::Reference => ConvAlgo::Reference,
        ConvPolicy::Tile(t) => fit_loop_budget(direct(t), s),
        ConvPolicy::Winograd(t) => {
            let w = ConvAlgo::Winograd(ConvTile {
                pointwise: true,
                batched: true,
                split: false,
                ..t
            });
            if runs_on(ctx, &w, s) {
                w
            } else {
                fit_loop_budget(direct(t), s)
            }
        }
        ConvPolicy::Force(algo) => algo,
        ConvPolicy::SplitK(t, splits) => {
            let tile = ConvTile {
                pointwise: t.pointwise && pointwise,
                batched: false,
                split: true,
                ..t
            };
            let need = s.min_splits(&tile).unwrap_or(u32::MAX);
            let splits = splits.max(need).min(s.in_c4() as u32).max(2);
            let split = ConvAlgo::SplitK { tile, splits };
            if runs_on(ctx, &split, s) {
                split
            } else {
                // A layer with a single input channel block cannot be split.
                fit_loop_budget(direct(t), s)
            }
        }
    };
    check(ctx, name, &algo, s)?;
    if precision == Precision::F16 && matches!(algo, ConvAlgo::Tiled { .. }) {
        return Err(Error::PrecisionUnsupported(format!(
            "layer '{name}': {} is f32 only",
            algo.describe()
        )));
    }
    Ok(algo)
}

/// Whether `ctx` can run convolutions with `policy` in `precision`: f16 needs SHADER_F16, and the
/// tuned kernels (the reference kernel, the yardstick, is f32 only).
pub fn check_precision(ctx: &GpuContext, policy: ConvPolicy, precision: Precision) -> Result<()> {
    if precision != Precision::F16 {
        return Ok(());
    }
    if !ctx.features.contains(wgpu::Features::SHADER_F16) {
        return Err(Error::PrecisionUnsupported(format!(
            "adapter '{}' ({:?}) does not support f16 shaders (no SHADER_F16 feature); use precision f32",
            ctx.info.name, ctx.info.backend
        )));
    }
    if policy == ConvPolicy::Reference {
        return Err(Error::PrecisionUnsupported(
            "precision f16 needs the tuned convolution kernels; the reference kernel is f32 only"
                .into(),
        ));
    }
    Ok(())
}
