//! Fully connected layer (shaders/linear.wgsl). The weight matrix is reordered at load time to
//! the channel-blocked order of its input (see `ops::layout`), so the kernel is a dot product.

use super::layout::{blocked_len, to_blocked};
use super::{Dispatch, Io, bind, storage_init, u32_of, uniform, workgroups};
use crate::gpu::{GpuContext, Kernel};
use crate::graph::{Linear, Shape};
use anyhow::Result;

/// Mirrors `LinearParams` in linear.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LinearParams {
    pub batch: u32,
    /// Floats per image of the (blocked) input.
    pub in_len: u32,
    pub out_features: u32,
    /// Floats per image of the (blocked) output: out_features rounded up to 4.
    pub out_len: u32,
}

/// [out][C*H*W] weights -> [out][blocked input order], zero columns for padding channels.
pub fn pack_weights(lin: &Linear, input: Shape) -> Vec<f32> {
    let out = lin.weight.shape[0];
    // Each row is an NCHW "image" of the input's shape: block it like an activation.
    to_blocked(&lin.weight.data, out, input)
}

pub fn prepare(ctx: &GpuContext, name: &str, lin: &Linear, io: &Io) -> Result<Dispatch> {
    let [out, inp] = [lin.weight.shape[0], lin.weight.shape[1]];
    let input = io.in_shapes[0];
    let in_len = blocked_len(input);
    let out_len = out.div_ceil(4) * 4;
    let params = LinearParams {
        batch: u32_of(io.batch, "batch")?,
        in_len: u32_of(in_len, "in features")?,
        out_features: u32_of(out, "out features")?,
        out_len: u32_of(out_len, "out features")?,
    };
    u32_of(io.batch * in_len.max(out_len), "linear activation length")?;
    let packed = pack_weights(lin, input);
    let weight = storage_init(ctx, &format!("{name}.weight"), &packed)?;
    let bias = lin.bias.clone().unwrap_or_else(|| vec![0.0; out]);
    let bias_buf = storage_init(ctx, &format!("{name}.bias"), &bias)?;
    let params_buf = uniform(ctx, &format!("{name}.params"), &params);
    let pipeline = ctx.pipeline(Kernel::Linear);
    let bind_group = bind(
        ctx,
        &pipeline,
        name,
        &[io.inputs[0], &weight, &bias_buf, io.output, &params_buf],
    );
    Ok(Dispatch {
        label: name.to_string(),
        kernel: Kernel::Linear,
        pipeline,
        bind_group,
        workgroups: workgroups(ctx, (io.batch * out_len) as u64)?,
        weight_bytes: (packed.len() + out) as u64 * 4,
        macs: (io.batch * out * inp) as u64,
    })
}
