//! Kernels with no weights that map one activation to another: ReLU and softmax.

use super::{Dispatch, Io, batch_len, bind, uniform, workgroups};
use crate::gpu::{GpuContext, Kernel};
use crate::graph::Shape;
use anyhow::Result;

/// Mirrors `ReluParams` in relu.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ReluParams {
    pub len4: u32,
    pub _pad: [u32; 3],
}

/// Mirrors `SoftmaxParams` in softmax.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SoftmaxParams {
    pub rows: u32,
    pub channels: u32,
    pub blocks: u32,
    pub spatial: u32,
}

/// A dispatch binding (input, output, params), as pool and residual kernels also use.
pub(crate) fn unary(
    ctx: &GpuContext,
    name: &str,
    kernel: Kernel,
    params_buf: wgpu::Buffer,
    threads: u64,
    io: &Io,
) -> Result<Dispatch> {
    let pipeline = ctx.pipeline(kernel);
    let bind_group = bind(
        ctx,
        &pipeline,
        name,
        &[io.inputs[0], io.output, &params_buf],
    );
    Ok(Dispatch {
        label: name.to_string(),
        kernel,
        pipeline,
        bind_group,
        workgroups: workgroups(ctx, threads)?,
        weight_bytes: 0,
        macs: 0,
    })
}

pub fn prepare_relu(ctx: &GpuContext, name: &str, shape: Shape, io: &Io) -> Result<Dispatch> {
    let len4 = batch_len(io.batch, shape)? / 4;
    let params = ReluParams { len4, _pad: [0; 3] };
    unary(
        ctx,
        name,
        Kernel::Relu,
        uniform(ctx, name, &params),
        len4 as u64,
        io,
    )
}

pub fn prepare_softmax(ctx: &GpuContext, name: &str, shape: Shape, io: &Io) -> Result<Dispatch> {
    batch_len(io.batch, shape)?;
    let params = SoftmaxParams {
        rows: io.batch as u32,
        channels: shape[0] as u32,
        blocks: super::layout::blocks(shape) as u32,
        spatial: (shape[1] * shape[2]) as u32,
    };
    unary(
        ctx,
        name,
        Kernel::Softmax,
        uniform(ctx, name, &params),
        io.batch as u64,
        io,
    )
}
