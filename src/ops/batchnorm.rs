//! Standalone batch norm (shaders/batchnorm.wgsl), for BN that cannot be folded into a conv.

use super::{Io, batch_len, u32_of};
use crate::error::Result;
use crate::gpu::{Cost, Dispatch, GpuContext, storage_f32, uniform, workgroups};
use crate::graph::{BatchNorm, Shape};
use crate::kernels::Kernel;
use crate::kernels::params::BatchNormParams;
use crate::layout::{blocks, pad_channels};

pub fn build(
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
    let stats_buf = storage_f32(ctx, &format!("{name}.stats"), &stats)?;
    let params = BatchNormParams {
        len4,
        blocks: u32_of(blocks(shape), "channel blocks")?,
        spatial: u32_of(shape[1] * shape[2], "pixels")?,
        relu: bn.relu as u32,
        eps: bn.eps,
        _pad: [0; 3],
    };
    Ok(Dispatch::new(
        ctx,
        name,
        Kernel::BatchNorm,
        &[
            io.inputs[0],
            &stats_buf,
            io.output,
            &uniform(ctx, &format!("{name}.params"), &params),
        ],
        workgroups(ctx, name, len4 as u64)?,
        Cost {
            weight_bytes: stats.len() as u64 * 4,
            macs: 0,
        },
    ))
}
