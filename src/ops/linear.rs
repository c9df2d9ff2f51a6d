//! Fully connected layer (shaders/linear.wgsl).

use super::{Dispatch, Io, bind, storage_init, u32_of, uniform, workgroups};
use crate::gpu::{GpuContext, Kernel};
use crate::graph::Linear;
use anyhow::Result;

/// Mirrors `LinearParams` in linear.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LinearParams {
    pub batch: u32,
    pub in_features: u32,
    pub out_features: u32,
    pub has_bias: u32,
}

pub fn prepare(ctx: &GpuContext, name: &str, lin: &Linear, io: &Io) -> Result<Dispatch> {
    let [out, inp] = [lin.weight.shape[0], lin.weight.shape[1]];
    let params = LinearParams {
        batch: u32_of(io.batch, "batch")?,
        in_features: u32_of(inp, "in features")?,
        out_features: u32_of(out, "out features")?,
        has_bias: lin.bias.is_some() as u32,
    };
    u32_of(io.batch * inp.max(out), "linear activation length")?;
    let weight = storage_init(ctx, &format!("{name}.weight"), &lin.weight.data)?;
    let bias = storage_init(
        ctx,
        &format!("{name}.bias"),
        lin.bias.as_deref().unwrap_or(&[]),
    )?;
    let params_buf = uniform(ctx, &format!("{name}.params"), &params);
    let pipeline = ctx.pipeline(Kernel::Linear);
    let bind_group = bind(
        ctx,
        &pipeline,
        name,
        &[io.inputs[0], &weight, &bias, io.output, &params_buf],
    );
    Ok(Dispatch {
        label: name.to_string(),
        kernel: Kernel::Linear,
        pipeline,
        bind_group,
        workgroups: workgroups(ctx, (io.batch * out) as u64)?,
        weight_bytes: (lin.weight.numel() + out) as u64 * 4,
        macs: (io.batch * out * inp) as u64,
    })
}
