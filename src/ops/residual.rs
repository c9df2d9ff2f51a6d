//! The residual connection's pieces that are not fused into a conv: the option-A shortcut and a
//! standalone add.

use super::elementwise::unary;
use super::{Io, batch_len, u32_of};
use crate::error::Result;
use crate::gpu::{Cost, Dispatch, GpuContext, uniform, workgroups};
use crate::graph::Shape;
use crate::kernels::Kernel;
use crate::kernels::params::{AddParams, ShortcutAParams};

pub fn build_shortcut_a(
    ctx: &GpuContext,
    name: &str,
    stride: usize,
    pad_before: usize,
    out: Shape,
    io: &Io,
) -> Result<Dispatch> {
    let [ic, ih, iw] = io.in_shapes[0];
    let len4 = batch_len(io.batch, out)? / 4;
    let params = ShortcutAParams {
        batch: u32_of(io.batch, "batch")?,
        in_c: u32_of(ic, "channels")?,
        in_h: u32_of(ih, "height")?,
        in_w: u32_of(iw, "width")?,
        out_c: u32_of(out[0], "channels")?,
        out_h: u32_of(out[1], "height")?,
        out_w: u32_of(out[2], "width")?,
        stride: u32_of(stride, "stride")?,
        pad_before: u32_of(pad_before, "padding")?,
        _pad: [0; 3],
    };
    unary(ctx, name, Kernel::ShortcutA, &params, len4 as u64, io)
}

pub fn build_add(
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
    Ok(Dispatch::new(
        ctx,
        name,
        Kernel::Add,
        &[
            io.inputs[0],
            io.inputs[1],
            io.output,
            &uniform(ctx, name, &params),
        ],
        workgroups(ctx, name, len4 as u64)?,
        Cost::default(),
    ))
}
