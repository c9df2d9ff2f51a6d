//! Standalone batch norm (shaders/batchnorm.wgsl), for BN that cannot be folded into a conv.

use super::layout::{blocks, pad_channels};
use super::{Dispatch, Io, batch_len, bind, storage_init, uniform, workgroups};
use crate::gpu::{GpuContext, Kernel};
use crate::graph::{BatchNorm, Shape};
use anyhow::Result;

/// Mirrors `BatchNormParams` in batchnorm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BatchNormParams {
    pub len4: u32,
    pub blocks: u32,
    pub spatial: u32,
    pub relu: u32,
    pub eps: f32,
    pub _pad: [u32; 3],
}

pub fn prepare(
    ctx: &GpuContext,
    name: &str,
    bn: &BatchNorm,
    shape: Shape,
    io: &Io,
) -> Result<Dispatch> {
    let len4 = batch_len(io.batch, shape)? / 4;
    // Padding channels get gamma 0, beta 0, mean 0, var 1: they stay 0.
    let stats: Vec<f32> = [
        pad_channels(&bn.gamma, 0.0),
        pad_channels(&bn.beta, 0.0),
        pad_channels(&bn.mean, 0.0),
        pad_channels(&bn.var, 1.0),
    ]
    .concat();
    let stats_buf = storage_init(ctx, &format!("{name}.stats"), &stats)?;
    let params = BatchNormParams {
        len4,
        blocks: blocks(shape) as u32,
        spatial: (shape[1] * shape[2]) as u32,
        relu: bn.relu as u32,
        eps: bn.eps,
        _pad: [0; 3],
    };
    let params_buf = uniform(ctx, &format!("{name}.params"), &params);
    let pipeline = ctx.pipeline(Kernel::BatchNorm);
    let bind_group = bind(
        ctx,
        &pipeline,
        name,
        &[io.inputs[0], &stats_buf, io.output, &params_buf],
    );
    Ok(Dispatch {
        label: name.to_string(),
        kernel: Kernel::BatchNorm,
        pipeline,
        bind_group,
        workgroups: workgroups(ctx, len4 as u64)?,
        weight_bytes: stats.len() as u64 * 4,
        macs: 0,
    })
}
