//! Standalone batch norm (shaders/batchnorm.wgsl), for BN that cannot be folded into a conv.

use super::{Dispatch, Io, batch_len, bind, storage_init, uniform, workgroups};
use crate::gpu::{GpuContext, Kernel};
use crate::graph::{BatchNorm, Shape};
use anyhow::Result;

/// Mirrors `BatchNormParams` in batchnorm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BatchNormParams {
    pub len: u32,
    pub channels: u32,
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
    let len = batch_len(io.batch, shape)?;
    let stats: Vec<f32> = [&bn.gamma, &bn.beta, &bn.mean, &bn.var]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let stats_buf = storage_init(ctx, &format!("{name}.stats"), &stats)?;
    let params = BatchNormParams {
        len,
        channels: shape[0] as u32,
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
        workgroups: workgroups(ctx, len as u64)?,
        weight_bytes: stats.len() as u64 * 4,
        macs: 0,
    })
}
