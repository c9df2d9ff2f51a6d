//! Max pooling and global average pooling (the latter in chunks over large maps, added up by
//! the split reduce: see `plan::POOL_CHUNK`).

use super::elementwise::unary;
use super::reduce::{self, Reduce};
use super::{Io, batch_len, u32_of};
use crate::error::{Result, fail};
use crate::gpu::{Dispatch, GpuContext, storage_f32};
use crate::graph::{MaxPool, Shape};
use crate::kernels::Kernel;
use crate::kernels::params::{GlobalAvgPoolParams, MaxPoolParams};
use crate::layout::blocks;
use crate::plan::POOL_CHUNK;

pub fn build_max(
    ctx: &GpuContext,
    name: &str,
    pool: &MaxPool,
    out: Shape,
    io: &Io,
) -> Result<Dispatch> {
    let [_, ih, iw] = io.in_shapes[0];
    let len4 = batch_len(io.batch, out)? / 4;
    let params = MaxPoolParams {
        planes: u32_of(io.batch * blocks(out), "planes")?,
        in_h: u32_of(ih, "height")?,
        in_w: u32_of(iw, "width")?,
        out_h: u32_of(out[1], "height")?,
        out_w: u32_of(out[2], "width")?,
        kernel_h: u32_of(pool.kernel[0], "kernel")?,
        kernel_w: u32_of(pool.kernel[1], "kernel")?,
        stride_h: u32_of(pool.stride[0], "stride")?,
        stride_w: u32_of(pool.stride[1], "stride")?,
        pad_top: u32_of(pool.pad[0], "padding")?,
        pad_left: u32_of(pool.pad[1], "padding")?,
        _pad: 0,
    };
    unary(ctx, name, Kernel::MaxPool, &params, len4 as u64, io)
}

/// The mean of every (image, channel block) plane: one dispatch when each plane fits one chunk,
/// else each chunk's share of the mean into scratch buffer 0, then the reduce pass.
pub fn build_global_avg(
    ctx: &GpuContext,
    name: &str,
    io: &Io,
    chunks: u32,
) -> Result<Vec<Dispatch>> {
    let [_, h, w] = io.in_shapes[0];
    let planes = io.batch * blocks(io.in_shapes[0]);
    let params = GlobalAvgPoolParams {
        planes: u32_of(planes, "planes")?,
        spatial: u32_of(h * w, "pixels")?,
        chunk: u32_of(POOL_CHUNK.min(h * w), "pixels")?,
        chunks,
    };
    let threads = planes as u64 * chunks as u64;
    if chunks == 1 {
        return Ok(vec![unary(
            ctx,
            name,
            Kernel::GlobalAvgPool,
            &params,
            threads,
            io,
        )?]);
    }
    let &[partial] = io.scratch.as_slice() else {
        fail!(
            InvalidGraph,
            "layer '{name}': a chunked pool needs one scratch buffer"
        );
    };
    let chunked = Io {
        inputs: io.inputs.clone(),
        in_shapes: io.in_shapes.clone(),
        output: partial,
        batch: io.batch,
        scratch: Vec::new(),
    };
    let first = unary(
        ctx,
        &format!("{name}.chunks"),
        Kernel::GlobalAvgPool,
        &params,
        threads,
        &chunked,
    )?;
    let zeros = storage_f32(ctx, &format!("{name}.zeros"), &[0.0; 4])?;
    let second = reduce::build(
        ctx,
        name,
        Reduce {
            partial,
            splits: chunks,
            len4: planes,
            out_c4: 1,
            out_hw: 1,
            bias: &zeros,
            residual: None,
            flags: 0,
            output: io.output,
        },
    )?;
    Ok(vec![first, second])
}
