//! The residual connection's pieces that are not fused into a conv: the option-A shortcut and a
//! standalone add.

use super::elementwise::unary;
use super::{Dispatch, Io, batch_len, bind, u32_of, uniform, workgroups};
use crate::gpu::{GpuContext, Kernel};
use crate::graph::Shape;
use anyhow::Result;

/// Mirrors `ShortcutAParams` in shortcut_a.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ShortcutAParams {
    pub batch: u32,
    pub in_c: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub stride: u32,
    pub pad_before: u32,
    pub _pad: [u32; 3],
}

/// Mirrors `AddParams` in add.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AddParams {
    pub len4: u32,
    pub relu: u32,
    pub _pad: [u32; 2],
}

pub fn prepare_shortcut_a(
    ctx: &GpuContext,
    name: &str,
    stride: usize,
    pad_before: usize,
    out: Shape,
    io: &Io,
) -> Result<Dispatch> {
    let [ic, ih, iw] = io.in_shapes[0];
    batch_len(io.batch, io.in_shapes[0])?;
    let len4 = batch_len(io.batch, out)? / 4;
    let params = ShortcutAParams {
        batch: io.batch as u32,
        in_c: ic as u32,
        in_h: ih as u32,
        in_w: iw as u32,
        out_c: out[0] as u32,
        out_h: out[1] as u32,
        out_w: out[2] as u32,
        stride: u32_of(stride, "stride")?,
        pad_before: u32_of(pad_before, "padding")?,
        _pad: [0; 3],
    };
    unary(
        ctx,
        name,
        Kernel::ShortcutA,
        uniform(ctx, name, &params),
        len4 as u64,
        io,
    )
}

pub fn prepare_add(
    ctx: &GpuContext,
    name: &str,
    relu: bool,
    shape: Shape,
    io: &Io,
) -> Result<Dispatch> {
    let len4 = batch_len(io.batch, shape)? / 4;
    let params = AddParams {
        len4,
        relu: relu as u32,
        _pad: [0; 2],
    };
    let params_buf = uniform(ctx, name, &params);
    let pipeline = ctx.pipeline(Kernel::Add);
    let bind_group = bind(
        ctx,
        &pipeline,
        name,
        &[io.inputs[0], io.inputs[1], io.output, &params_buf],
    );
    Ok(Dispatch {
        label: name.to_string(),
        kernel: Kernel::Add,
        pipeline,
        bind_group,
        workgroups: workgroups(ctx, len4 as u64)?,
        weight_bytes: 0,
        macs: 0,
    })
}
