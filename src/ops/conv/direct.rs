//! The generated direct convolutions (`kernels::conv_direct`): weight packing, params and
//! dispatch of the whole kernel and of its split-K form (partial sums over ranges of input
//! channels, then shaders/split_reduce.wgsl for bias and epilogue).

use super::super::{Io, u32_of};
use super::{bias_blocks, flags, split_reduce, upload_weights};
use crate::error::{Result, require};
use crate::gpu::{Cost, Dispatch, GpuContext, storage_f32, uniform, workgroups};
use crate::graph::{Conv, Shape};
use crate::kernels::params::ConvDirectParams;
use crate::kernels::{ConvTile, Kernel};
use crate::layout::blocked_len;
use crate::precision::Precision;

/// Packs `[out_c][in_c][kh][kw]` weights for `tile` kernels: `[tiles_m][kh][kw][in_c4][4][tm]`, zero
/// where an output or input channel is padding.
pub fn pack_tiled(weight: &[f32], shape: [usize; 4], tm: usize) -> Vec<f32> {
    let [oc, ic, kh, kw] = shape;
    let ic4 = ic.div_ceil(4);
    let tiles = oc.div_ceil(tm);
    let per_tile = kh * kw * ic4 * 4 * tm;
    let mut out = vec![0.0f32; tiles * per_tile];
    for o in 0..oc {
        for c in 0..ic {
            for y in 0..kh {
                for x in 0..kw {
                    let k = ((y * kw + x) * ic4 + c / 4) * 4 + c % 4;
                    out[(o / tm) * per_tile + k * tm + o % tm] =
                        weight[((o * ic + c) * kh + y) * kw + x];
                }
            }
        }
    }
    out
}

/// The params of one direct (or split) kernel over the whole layer.
fn params(conv: &Conv, out: Shape, io: &Io, tile: ConvTile) -> Result<ConvDirectParams> {
    let [ic, ih, iw] = io.in_shapes[0];
    let [oc, oh, ow] = out;
    let [kh, kw] = conv.kernel();
    let tm = tile.tm as usize;
    let tiles_m = oc.div_ceil(tm);
    let pixels = io.batch * oh * ow;
    let in_c4 = ic.div_ceil(4);
    Ok(ConvDirectParams {
        pixels: u32_of(pixels, "pixels")?,
        out_hw: u32_of(oh * ow, "pixels")?,
        out_w: u32_of(ow, "width")?,
        out_c4: u32_of(oc.div_ceil(4), "out channels")?,
        in_c4: u32_of(in_c4, "in channels")?,
        in_h: u32_of(ih, "height")?,
        in_w: u32_of(iw, "width")?,
        in_hw: u32_of(ih * iw, "pixels")?,
        kernel_h: u32_of(kh, "kernel")?,
        kernel_w: u32_of(kw, "kernel")?,
        stride_h: u32_of(conv.stride[0], "stride")?,
        stride_w: u32_of(conv.stride[1], "stride")?,
        pad_top: u32_of(conv.pad[0], "padding")?,
        pad_left: u32_of(conv.pad[1], "padding")?,
        flags: flags(conv, io),
        tiles_m: u32_of(tiles_m, "channel tiles")?,
        tiles_n: u32_of(pixels.div_ceil(tile.tile_pixels() as usize), "pixel tiles")?,
        tile_stride: u32_of(kh * kw * in_c4 * tm, "weights")?,
        images: 1,
        split_c4: u32_of(in_c4, "in channels")?,
        split_stride: 0,
        _pad: [0; 3],
    })
}

/// Invocations of a kernel over `tiles` tiles: one tile per 8-lane subgroup (8 per workgroup of
/// 64), or one per workgroup.
pub fn threads(tile: ConvTile, tiles: u64) -> u64 {
    tiles * if tile.subgroup8 { 8 } else { 64 }
}

pub(super) fn cost(conv: &Conv, out: Shape, io: &Io, weight_bytes: u64) -> Cost {
    let [oc, oh, ow] = out;
    let [kh, kw] = conv.kernel();
    Cost {
        weight_bytes,
        macs: (io.batch * oc * oh * ow * conv.in_channels() * kh * kw) as u64,
    }
}

pub fn build(
    ctx: &GpuContext,
    name: &str,
    conv: &Conv,
    out: Shape,
    io: &Io,
    tile: ConvTile,
    precision: Precision,
) -> Result<Dispatch> {
    let p = params(conv, out, io, tile)?;
    let shape = conv
        .weight
        .shape
        .as_slice()
        .try_into()
        .expect("4-D conv weight");
    let packed = pack_tiled(&conv.weight.data, shape, tile.tm as usize);
    let (weight, weight_bytes) =
        upload_weights(ctx, &format!("{name}.weight"), &packed, precision)?;
    drop(packed);
    let bias = bias_blocks(conv, (p.tiles_m * tile.tm / 4) as usize);
    let bias_buf = storage_f32(ctx, &format!("{name}.bias"), &bias)?;
    // Without a residual, the binding gets a harmless stand-in: the input, bound read-only twice.
    let residual = io.inputs.get(1).copied().unwrap_or(io.inputs[0]);
    let tiles = (p.tiles_m * p.tiles_n) as u64;
    Ok(Dispatch::new(
        ctx,
        name,
        Kernel::ConvDirect(tile, precision),
        &[
            io.inputs[0],
            &weight,
            &bias_buf,
            residual,
            io.output,
            &uniform(ctx, &format!("{name}.params"), &p),
        ],
        workgroups(ctx, name, threads(tile, tiles))?,
        cost(conv, out, io, weight_bytes + bias.len() as u64 * 4),
    ))
}

/// Split-K: `splits` partial sums (each over a range of input channel blocks, every window
/// position) into scratch buffer 0, then the reduce pass with bias and epilogue.
#[allow(clippy::too_many_arguments)]
pub fn build_split(
    ctx: &GpuContext,
    name: &str,
    conv: &Conv,
    out: Shape,
    io: &Io,
    tile: ConvTile,
    splits: u32,
    precision: Precision,
) -> Result<Vec<Dispatch>> {
    let &[partial] = io.scratch.as_slice() else {
        crate::error::fail!(
            InvalidGraph,
            "layer '{name}': split-K needs one scratch buffer"
        );
    };
    let mut p = params(conv, out, io, tile)?;
    require!(
        splits >= 1 && splits <= p.in_c4,
        InvalidGraph,
        "layer '{name}': {splits} splits of {} channel blocks",
        p.in_c4
    );
    p.split_c4 = p.in_c4.div_ceil(splits);
    // The last split may be empty after rounding: fewer splits then, each as wide.
    let splits = p.in_c4.div_ceil(p.split_c4);
    let len4 = io.batch * blocked_len(out) / 4;
    p.split_stride = u32_of(len4, "split length")?;
    let shape = conv
        .weight
        .shape
        .as_slice()
        .try_into()
        .expect("4-D conv weight");
    let packed = pack_tiled(&conv.weight.data, shape, tile.tm as usize);
    let (weight, weight_bytes) =
        upload_weights(ctx, &format!("{name}.weight"), &packed, precision)?;
    drop(packed);
    let out_c4 = out[0].div_ceil(4);
    let bias = bias_blocks(conv, out_c4);
    let tiles = (p.tiles_m * p.tiles_n) as u64;
    let mut groups = workgroups(ctx, name, threads(tile, tiles))?;
    groups[2] = splits;
    let partial_step = Dispatch::new(
        ctx,
        format!("{name}.split"),
        Kernel::ConvDirect(tile, precision),
        &[
            io.inputs[0],
            &weight,
            partial,
            &uniform(ctx, &format!("{name}.params"), &p),
        ],
        groups,
        cost(conv, out, io, weight_bytes + bias.len() as u64 * 4),
    );
    let reduce_step = split_reduce(ctx, name, conv, out, io, partial, splits, &bias)?;
    Ok(vec![partial_step, reduce_step])
}
