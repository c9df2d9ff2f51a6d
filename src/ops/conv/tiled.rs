//! The workgroup-tiled convolutions (`kernels::conv_tiled`): params and dispatch of the whole
//! kernel and of its split-K form (partial sums over ranges of the K loop, then
//! shaders/split_reduce.wgsl for bias and epilogue). Weights are packed as for the direct
//! kernels, with the workgroup's channel tile as `tm`.

use super::super::{Io, u32_of};
use super::direct::{cost, pack_tiled};
use super::{bias_blocks, flags, split_reduce, upload_weights};
use crate::error::{Result, fail, require};
use crate::gpu::{Dispatch, GpuContext, storage_f32, uniform, workgroups};
use crate::graph::{Conv, Shape};
use crate::kernels::params::ConvTiledParams;
use crate::kernels::{Kernel, TiledTile, WORKGROUP};
use crate::layout::blocked_len;
use crate::precision::Precision;

/// The params over the whole layer, one split covering every step.
fn params(conv: &Conv, out: Shape, io: &Io, tile: TiledTile) -> Result<ConvTiledParams> {
    let [ic, ih, iw] = io.in_shapes[0];
    let [oc, oh, ow] = out;
    let [kh, kw] = conv.kernel();
    let pixels = io.batch * oh * ow;
    let in_c4 = ic.div_ceil(4);
    let steps = kh * kw * in_c4;
    let tm = tile.tile_channels() as usize;
    Ok(ConvTiledParams {
        pixels: u32_of(pixels, "pixels")?,
        out_hw: u32_of(oh * ow, "pixels")?,
        out_w: u32_of(ow, "width")?,
        out_c4: u32_of(oc.div_ceil(4), "out channels")?,
        in_c4: u32_of(in_c4, "in channels")?,
        in_h: u32_of(ih, "height")?,
        in_w: u32_of(iw, "width")?,
        in_hw: u32_of(ih * iw, "pixels")?,
        kernel_w: u32_of(kw, "kernel")?,
        stride_h: u32_of(conv.stride[0], "stride")?,
        stride_w: u32_of(conv.stride[1], "stride")?,
        pad_top: u32_of(conv.pad[0], "padding")?,
        pad_left: u32_of(conv.pad[1], "padding")?,
        flags: flags(conv, io),
        tiles_m: u32_of(oc.div_ceil(tm), "channel tiles")?,
        tiles_n: u32_of(pixels.div_ceil(tile.tile_pixels() as usize), "pixel tiles")?,
        tile_stride: u32_of(steps * tm, "weights")?,
        steps: u32_of(steps, "weights")?,
        split_steps: u32_of(steps, "weights")?,
        split_stride: 0,
    })
}

/// The dispatches of a tiled convolution: one kernel, or with `splits` > 1 the split kernel
/// writing partial sums into scratch buffer 0 and the reduce pass. The kernels are f32 only
/// (`plan::conv::choose` refuses them in f16), so the weights are uploaded in f32.
pub fn build(
    ctx: &GpuContext,
    name: &str,
    conv: &Conv,
    out: Shape,
    io: &Io,
    tile: TiledTile,
    splits: u32,
) -> Result<Vec<Dispatch>> {
    let mut p = params(conv, out, io, tile)?;
    let shape = conv
        .weight
        .shape
        .as_slice()
        .try_into()
        .expect("4-D conv weight");
    let packed = pack_tiled(&conv.weight.data, shape, tile.tile_channels() as usize);
    let (weight, weight_bytes) =
        upload_weights(ctx, &format!("{name}.weight"), &packed, Precision::F32)?;
    drop(packed);
    let tiles = (p.tiles_m * p.tiles_n) as u64;
    let mut groups = workgroups(ctx, name, tiles * WORKGROUP as u64)?;
    if !tile.split {
        let bias = bias_blocks(conv, (p.tiles_m * tile.tile_channels() / 4) as usize);
        let bias_buf = storage_f32(ctx, &format!("{name}.bias"), &bias)?;
        // Without a residual, the binding gets a harmless stand-in: the input, bound read-only
        // twice.
        let residual = io.inputs.get(1).copied().unwrap_or(io.inputs[0]);
        return Ok(vec![Dispatch::new(
            ctx,
            name,
            Kernel::ConvTiled(tile),
            &[
                io.inputs[0],
                &weight,
                &bias_buf,
                residual,
                io.output,
                &uniform(ctx, &format!("{name}.params"), &p),
            ],
            groups,
            cost(conv, out, io, weight_bytes + bias.len() as u64 * 4),
        )]);
    }
    let &[partial] = io.scratch.as_slice() else {
        fail!(
            InvalidGraph,
            "layer '{name}': split-K needs one scratch buffer"
        );
    };
    require!(
        splits >= 1 && splits <= p.steps,
        InvalidGraph,
        "layer '{name}': {splits} splits of {} steps",
        p.steps
    );
    p.split_steps = p.steps.div_ceil(splits);
    // The last split may be empty after rounding: fewer splits then, each as wide.
    let splits = p.steps.div_ceil(p.split_steps);
    let len4 = io.batch * blocked_len(out) / 4;
    p.split_stride = u32_of(len4, "split length")?;
    groups[2] = splits;
    let out_c4 = out[0].div_ceil(4);
    let bias = bias_blocks(conv, out_c4);
    let partial_step = Dispatch::new(
        ctx,
        format!("{name}.split"),
        Kernel::ConvTiled(tile),
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
