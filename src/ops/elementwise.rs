//! Kernels with no weights that map one activation to another: ReLU and softmax.

use super::{Io, batch_len, u32_of};
use crate::error::Result;
use crate::gpu::{Cost, Dispatch, GpuContext, uniform, workgroups};
use crate::graph::Shape;
use crate::kernels::Kernel;
use crate::kernels::params::{ReluParams, SoftmaxParams};
use crate::layout::blocks;

/// A dispatch binding (input, output, params) over `threads` invocations, as the pools and the
/// option-A shortcut also use.
pub(super) fn unary<T: bytemuck::Pod>(
    ctx: &GpuContext,
    name: &str,
    kernel: Kernel,
    params: &T,
    threads: u64,
    io: &Io,
) -> Result<Dispatch> {
    Ok(Dispatch::new(
        ctx,
        name,
        kernel,
        &[io.inputs[0], io.output, &uniform(ctx, name, params)],
        workgroups(ctx, name, threads)?,
        Cost::default(),
    ))
}

pub fn build_relu(ctx: &GpuContext, name: &str, shape: Shape, io: &Io) -> Result<Dispatch> {
    let len4 = batch_len(io.batch, shape)? / 4;
    let params = ReluParams { len4, _pad: [0; 3] };
    unary(ctx, name, Kernel::Relu, &params, len4 as u64, io)
}

pub fn build_softmax(ctx: &GpuContext, name: &str, shape: Shape, io: &Io) -> Result<Dispatch> {
    let params = SoftmaxParams {
        rows: u32_of(io.batch, "batch")?,
        channels: u32_of(shape[0], "channels")?,
        blocks: u32_of(blocks(shape), "channel blocks")?,
        spatial: u32_of(shape[1] * shape[2], "pixels")?,
    };
    unary(ctx, name, Kernel::Softmax, &params, io.batch as u64, io)
}
