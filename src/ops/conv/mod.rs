//! Convolution: weight packing, the choice of kernel per layer, and the dispatch.
//!
//! Kernels, all on channel-blocked activations (see `ops::layout`):
//! - the reference kernel (shaders/conv_reference.wgsl), a plain direct loop kept as the yardstick
//!   (`ConvPolicy::Reference`, `bench --reference-conv`, benches/conv.rs);
//! - the tuned kernels (`wgsl.rs`), register-blocked implicit GEMM generated per tile shape, with
//!   a 1x1 variant and a variant that shares weights across 8-lane subgroups;
//! - Winograd F(2x2, 3x3) (`winograd.rs`) for wide 3x3 stride-1 layers, on top of the tuned 1x1.
//!
//! `ConvPolicy::Auto` picks per layer (see [`auto_tile`] and [`winograd_tile`]). The stem's
//! stride-2 conv is also rewritten before it gets here (graph/space_to_depth.rs).
//!
//! `Precision::F16` runs every tuned kernel (so every conv of a network, Winograd's products
//! included) with f16 weights and arithmetic; the reference kernel is f32 only.

pub mod wgsl;
pub mod winograd;

use super::{Dispatch, Io, bind, storage_init, storage_init_f16, u32_of, uniform, workgroups};
use crate::gpu::{GpuContext, Kernel};
use crate::graph::{Conv, Shape};
use crate::precision::Precision;
use anyhow::{Result, bail};
pub use wgsl::{ConvTile, FastConvParams};

/// Output pixels per invocation of the reference kernel (`PIXELS` in conv_reference.wgsl).
const PIXELS: usize = 4;

/// Mirrors `ConvParams` in conv_reference.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvParams {
    pub batch: u32,
    pub in_c: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub out_c4: u32,
    pub flags: u32,
    pub pixel_blocks: u32,
}

pub const HAS_RESIDUAL: u32 = 2;
pub const RELU: u32 = 4;

/// Which convolution kernel a session uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvPolicy {
    /// The tuned kernels, with tiles chosen per layer from the adapter's subgroup size.
    #[default]
    Auto,
    /// The plain reference kernel everywhere.
    Reference,
    /// One tuned variant for every layer (for tests and benchmarks). `pointwise: true` uses the
    /// 1x1 variant on the layers it fits and the general one elsewhere; `false` never uses it.
    Tile(ConvTile),
    /// Winograd F(2x2, 3x3) on every 3x3 stride-1 layer, the tile elsewhere (tests, benchmarks).
    Winograd(ConvTile),
}

/// Repacks [out_c][in_c][kh][kw] weights as [in_c * kh * kw][out_c rounded up to 4], so that one
/// vec4 load gives the weight of 4 consecutive output channels (reference kernel).
pub fn pack_weights(conv: &Conv) -> Vec<f32> {
    let oc = conv.out_channels();
    let oc_padded = oc.div_ceil(4) * 4;
    let k = conv.weight.numel() / oc;
    let mut packed = vec![0.0f32; k * oc_padded];
    for o in 0..oc {
        for r in 0..k {
            packed[r * oc_padded + o] = conv.weight.data[o * k + r];
        }
    }
    packed
}

/// Output channels per tile of the tuned kernels for a layer of `oc` channels.
pub fn channel_tile(oc: usize) -> u32 {
    if oc.is_multiple_of(32) || oc >= 128 {
        32
    } else if oc > 8 {
        16
    } else {
        8
    }
}

/// A 1x1 kernel without padding: the pointwise variant applies (any stride).
pub fn is_pointwise(conv: &Conv) -> bool {
    conv.kernel() == [1, 1] && conv.pad == [0; 4]
}

/// The tile the tuned kernels use for a layer of `out_c` channels and `pixels` output pixels
/// (across the batch) on `ctx`'s adapter.
pub fn auto_tile(ctx: &GpuContext, conv: &Conv, pixels: usize) -> ConvTile {
    let subgroup8 = ctx.subgroup8();
    let oc = conv.out_channels();
    // Measured on lavapipe (8 lanes, AVX-512, 2 cores; process CPU time over ResNet-50's 1x1,
    // 3x3/2 and stem shapes): 32 channels x 4 pixels per lane beats 16 x 4 by 10-40% although
    // its 128 accumulators spill (each loaded pixel feeds 32 channels, and loads are what
    // costs), and beats 24 x 4, 32 x 6 and 32 x 8 (which collapses). Narrow layers get 16 or 8
    // channels rather than a padded tile. 2 pixels per lane only for tiny maps: on 7x7 layers
    // 4 measured 1.5x faster in spite of the quarter wasted in the last tile.
    // Without 8-lane subgroups (real GPUs: one thread per invocation, registers per thread are
    // the limit) 16 x 4 keeps the accumulators in registers.
    let tm = if subgroup8 {
        channel_tile(oc)
    } else {
        channel_tile(oc).min(16)
    };
    let px = if pixels < 16 { 2 } else { 4 };
    ConvTile {
        tm,
        px,
        pointwise: is_pointwise(conv),
        subgroup8,
        batched: false,
    }
}

fn bias_blocks(conv: &Conv, blocks: usize) -> Vec<f32> {
    let mut b = conv
        .bias
        .clone()
        .unwrap_or_else(|| vec![0.0; conv.out_channels()]);
    b.resize(blocks * 4, 0.0);
    b
}

/// Whether (and with which product tile) a layer runs as Winograd F(2x2, 3x3).
pub fn winograd_tile(
    ctx: &GpuContext,
    conv: &Conv,
    in_shape: Shape,
    out: Shape,
    batch: usize,
    policy: ConvPolicy,
) -> Option<ConvTile> {
    // Its temporaries (16 transformed copies of the tiles) must fit one storage binding.
    let temps = winograd::scratch_floats(in_shape, out, batch);
    if !winograd::applies(conv) || temps.iter().any(|&f| f as u64 * 4 > ctx.max_binding()) {
        return None;
    }
    let (_, _, tiles) = winograd::tiles(out, batch);
    match policy {
        ConvPolicy::Winograd(t) => Some(ConvTile {
            pointwise: true,
            batched: true,
            ..t
        }),
        // Measured on lavapipe (process CPU time, examples of ResNet layers): 1.2-1.7x faster
        // from 64 channels on when the layer is big enough; slower on narrow or tiny layers
        // (16-32 channels, or 64 channels on 8x8 at batch 1), where the two extra passes and
        // dispatches cost more than the saved multiplies.
        ConvPolicy::Auto
            if ctx.subgroup8()
                && in_shape[0] >= 64
                && out[0] >= 64
                && batch * out[0] * out[1] * out[2] * in_shape[0] * 9 >= 20_000_000 =>
        {
            Some(winograd::gemm_tile(true, out[0], tiles))
        }
        _ => None,
    }
}

/// Floats of the temporaries a layer needs: two for Winograd layers, none otherwise.
pub fn scratch_floats(
    ctx: &GpuContext,
    conv: &Conv,
    in_shape: Shape,
    out: Shape,
    batch: usize,
    policy: ConvPolicy,
) -> Vec<usize> {
    match winograd_tile(ctx, conv, in_shape, out, batch, policy) {
        Some(_) => winograd::scratch_floats(in_shape, out, batch).to_vec(),
        None => Vec::new(),
    }
}

pub fn prepare(
    ctx: &GpuContext,
    name: &str,
    conv: &Conv,
    out: Shape,
    io: &Io,
    policy: ConvPolicy,
    precision: Precision,
) -> Result<Vec<Dispatch>> {
    super::batch_len(io.batch, out)?;
    super::batch_len(io.batch, io.in_shapes[0])?;
    check_precision(ctx, policy, precision)?;
    let pixels = io.batch * out[1] * out[2];
    if let Some(tile) = winograd_tile(ctx, conv, io.in_shapes[0], out, io.batch, policy) {
        return winograd::prepare(ctx, name, conv, out, io, tile, precision);
    }
    Ok(vec![match policy {
        ConvPolicy::Reference => prepare_reference(ctx, name, conv, out, io)?,
        ConvPolicy::Auto => {
            let tile = auto_tile(ctx, conv, pixels);
            prepare_fast(ctx, name, conv, out, io, tile, precision)?
        }
        ConvPolicy::Tile(t) | ConvPolicy::Winograd(t) => {
            let tile = ConvTile {
                pointwise: t.pointwise && is_pointwise(conv),
                batched: false,
                ..t
            };
            prepare_fast(ctx, name, conv, out, io, tile, precision)?
        }
    }])
}

/// Whether `ctx` can run convolutions with `policy` in `precision`: f16 needs SHADER_F16, and the
/// tuned kernels (the reference kernel, the yardstick, is f32 only).
pub fn check_precision(ctx: &GpuContext, policy: ConvPolicy, precision: Precision) -> Result<()> {
    if precision != Precision::F16 {
        return Ok(());
    }
    if !ctx.features.contains(wgpu::Features::SHADER_F16) {
        bail!(
            "adapter '{}' ({:?}) does not support f16 shaders (no SHADER_F16 feature); use precision f32",
            ctx.info.name,
            ctx.info.backend
        );
    }
    if policy == ConvPolicy::Reference {
        bail!(
            "precision f16 needs the tuned convolution kernels; the reference kernel is f32 only"
        );
    }
    Ok(())
}

fn flags(conv: &Conv, io: &Io) -> u32 {
    (if io.inputs.len() > 1 { HAS_RESIDUAL } else { 0 }) | if conv.relu { RELU } else { 0 }
}

fn prepare_reference(
    ctx: &GpuContext,
    name: &str,
    conv: &Conv,
    out: Shape,
    io: &Io,
) -> Result<Dispatch> {
    let [ic, ih, iw] = io.in_shapes[0];
    let [oc, oh, ow] = out;
    let [kh, kw] = conv.kernel();
    let pixel_blocks = (oh * ow).div_ceil(PIXELS);
    let out_c4 = oc.div_ceil(4);
    let params = ConvParams {
        batch: u32_of(io.batch, "batch")?,
        in_c: u32_of(ic, "in channels")?,
        in_h: u32_of(ih, "height")?,
        in_w: u32_of(iw, "width")?,
        out_c: u32_of(oc, "out channels")?,
        out_h: u32_of(oh, "height")?,
        out_w: u32_of(ow, "width")?,
        kernel_h: kh as u32,
        kernel_w: kw as u32,
        stride_h: u32_of(conv.stride[0], "stride")?,
        stride_w: u32_of(conv.stride[1], "stride")?,
        pad_top: u32_of(conv.pad[0], "padding")?,
        pad_left: u32_of(conv.pad[1], "padding")?,
        out_c4: out_c4 as u32,
        flags: flags(conv, io),
        pixel_blocks: u32_of(pixel_blocks, "pixels")?,
    };
    let packed = pack_weights(conv);
    let bias = bias_blocks(conv, out_c4);
    let threads = (pixel_blocks * out_c4 * io.batch) as u64;
    finish(
        ctx,
        name,
        conv,
        out,
        io,
        Kernel::ConvReference,
        Weights::F32(&packed),
        &bias,
        uniform(ctx, &format!("{name}.params"), &params),
        workgroups(ctx, threads)?,
    )
}

fn prepare_fast(
    ctx: &GpuContext,
    name: &str,
    conv: &Conv,
    out: Shape,
    io: &Io,
    tile: ConvTile,
    precision: Precision,
) -> Result<Dispatch> {
    let [ic, ih, iw] = io.in_shapes[0];
    let [oc, oh, ow] = out;
    let [kh, kw] = conv.kernel();
    let tm = tile.tm as usize;
    let tiles_m = oc.div_ceil(tm);
    let pixels = io.batch * oh * ow;
    let tiles_n = pixels.div_ceil(tile.tile_pixels() as usize);
    let in_c4 = ic.div_ceil(4);
    let params = FastConvParams {
        pixels: u32_of(pixels, "pixels")?,
        out_hw: u32_of(oh * ow, "pixels")?,
        out_w: u32_of(ow, "width")?,
        out_c4: u32_of(oc.div_ceil(4), "out channels")?,
        in_c4: u32_of(in_c4, "in channels")?,
        in_h: u32_of(ih, "height")?,
        in_w: u32_of(iw, "width")?,
        in_hw: u32_of(ih * iw, "pixels")?,
        kernel_h: kh as u32,
        kernel_w: kw as u32,
        stride_h: u32_of(conv.stride[0], "stride")?,
        stride_w: u32_of(conv.stride[1], "stride")?,
        pad_top: u32_of(conv.pad[0], "padding")?,
        pad_left: u32_of(conv.pad[1], "padding")?,
        flags: flags(conv, io),
        tiles_m: u32_of(tiles_m, "channel tiles")?,
        tiles_n: u32_of(tiles_n, "pixel tiles")?,
        tile_stride: u32_of(kh * kw * in_c4 * tm, "weights")?,
        images: 1,
        _pad: 0,
    };
    let packed = wgsl::pack_tiled(&conv.weight.data, [oc, ic, kh, kw], tm);
    let halves;
    let weights = match precision {
        Precision::F32 => Weights::F32(&packed),
        Precision::F16 => {
            halves = wgsl::to_f16_bits(&packed);
            Weights::F16(&halves)
        }
    };
    let bias = bias_blocks(conv, tiles_m * tm / 4);
    let tiles = (tiles_m * tiles_n) as u64;
    // One tile per 8-lane subgroup (8 per workgroup of 64), or one per workgroup.
    let threads = if tile.subgroup8 {
        tiles * 8
    } else {
        tiles * 64
    };
    finish(
        ctx,
        name,
        conv,
        out,
        io,
        Kernel::conv_fast(tile, precision),
        weights,
        &bias,
        uniform(ctx, &format!("{name}.params"), &params),
        workgroups(ctx, threads)?,
    )
}

/// Packed weights as the kernel reads them.
#[derive(Clone, Copy)]
pub enum Weights<'a> {
    F32(&'a [f32]),
    /// f16 bit patterns.
    F16(&'a [u16]),
}

impl Weights<'_> {
    /// Uploads them as a read-only storage buffer; also returns its size in bytes.
    pub fn upload(self, ctx: &GpuContext, label: &str) -> Result<(wgpu::Buffer, u64)> {
        Ok(match self {
            Weights::F32(w) => (storage_init(ctx, label, w)?, w.len() as u64 * 4),
            Weights::F16(w) => (storage_init_f16(ctx, label, w)?, w.len() as u64 * 2),
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    ctx: &GpuContext,
    name: &str,
    conv: &Conv,
    out: Shape,
    io: &Io,
    kernel: Kernel,
    weights: Weights,
    bias: &[f32],
    params_buf: wgpu::Buffer,
    workgroups: [u32; 3],
) -> Result<Dispatch> {
    let (weight, packed_bytes) = weights.upload(ctx, &format!("{name}.weight"))?;
    let bias_buf = storage_init(ctx, &format!("{name}.bias"), bias)?;
    let pipeline = ctx.pipeline(kernel);
    // Without a residual, the binding gets a harmless stand-in: the input, bound read-only twice.
    let residual = io.inputs.get(1).copied().unwrap_or(io.inputs[0]);
    let bind_group = bind(
        ctx,
        &pipeline,
        name,
        &[
            io.inputs[0],
            &weight,
            &bias_buf,
            residual,
            io.output,
            &params_buf,
        ],
    );
    let [ic, _, _] = io.in_shapes[0];
    let [oc, oh, ow] = out;
    let [kh, kw] = conv.kernel();
    Ok(Dispatch {
        label: name.to_string(),
        kernel,
        pipeline,
        bind_group,
        workgroups,
        weight_bytes: packed_bytes + bias.len() as u64 * 4,
        macs: (io.batch * oc * oh * ow * ic * kh * kw) as u64,
    })
}
