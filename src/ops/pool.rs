//! Max pooling and global average pooling.

use super::elementwise::unary;
use super::layout::blocks;
use super::{Dispatch, Io, batch_len, u32_of, uniform};
use crate::gpu::{GpuContext, Kernel};
use crate::graph::{MaxPool, Shape};
use anyhow::Result;

/// Mirrors `MaxPoolParams` in max_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MaxPoolParams {
    pub planes: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub _pad: u32,
}

/// Mirrors `GlobalAvgPoolParams` in global_avg_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GlobalAvgPoolParams {
    pub planes: u32,
    pub spatial: u32,
    pub _pad: [u32; 2],
}

pub fn prepare_max(
    ctx: &GpuContext,
    name: &str,
    pool: &MaxPool,
    out: Shape,
    io: &Io,
) -> Result<Dispatch> {
    let [_, ih, iw] = io.in_shapes[0];
    batch_len(io.batch, io.in_shapes[0])?;
    let len4 = batch_len(io.batch, out)? / 4;
    let params = MaxPoolParams {
        planes: u32_of(io.batch * blocks(out), "planes")?,
        in_h: ih as u32,
        in_w: iw as u32,
        out_h: out[1] as u32,
        out_w: out[2] as u32,
        kernel_h: u32_of(pool.kernel[0], "kernel")?,
        kernel_w: u32_of(pool.kernel[1], "kernel")?,
        stride_h: u32_of(pool.stride[0], "stride")?,
        stride_w: u32_of(pool.stride[1], "stride")?,
        pad_top: u32_of(pool.pad[0], "padding")?,
        pad_left: u32_of(pool.pad[1], "padding")?,
        _pad: 0,
    };
    unary(
        ctx,
        name,
        Kernel::MaxPool,
        uniform(ctx, name, &params),
        len4 as u64,
        io,
    )
}

pub fn prepare_global_avg(ctx: &GpuContext, name: &str, io: &Io) -> Result<Dispatch> {
    let [_, h, w] = io.in_shapes[0];
    batch_len(io.batch, io.in_shapes[0])?;
    let planes = io.batch * blocks(io.in_shapes[0]);
    let params = GlobalAvgPoolParams {
        planes: u32_of(planes, "planes")?,
        spatial: (h * w) as u32,
        _pad: [0; 2],
    };
    unary(
        ctx,
        name,
        Kernel::GlobalAvgPool,
        uniform(ctx, name, &params),
        planes as u64,
        io,
    )
}
