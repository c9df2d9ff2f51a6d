//! Convolution: weight packing and the dispatch of shaders/conv.wgsl.

use super::{Dispatch, Io, bind, storage_init, u32_of, uniform, workgroups};
use crate::gpu::{GpuContext, Kernel};
use crate::graph::{Conv, Shape};
use anyhow::Result;

/// Output pixels per invocation (`PIXELS` in conv.wgsl).
const PIXELS: usize = 4;

/// Mirrors `ConvParams` in conv.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvParams {
    pub batch: u32,
    pub in_c: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub out_c4: u32,
    pub flags: u32,
    pub pixel_blocks: u32,
}

pub const HAS_BIAS: u32 = 1;
pub const HAS_RESIDUAL: u32 = 2;
pub const RELU: u32 = 4;

/// Repacks [out_c][in_c][kh][kw] weights as [in_c * kh * kw][out_c rounded up to 4], so that one
/// vec4 load gives the weight of 4 consecutive output channels.
pub fn pack_weights(conv: &Conv) -> Vec<f32> {
    let oc = conv.out_channels();
    let oc_padded = oc.div_ceil(4) * 4;
    let k = conv.weight.numel() / oc;
    let mut packed = vec![0.0f32; k * oc_padded];
    for o in 0..oc {
        for r in 0..k {
            packed[r * oc_padded + o] = conv.weight.data[o * k + r];
        }
    }
    packed
}

pub fn prepare(ctx: &GpuContext, name: &str, conv: &Conv, out: Shape, io: &Io) -> Result<Dispatch> {
    let [ic, ih, iw] = io.in_shapes[0];
    let [oc, oh, ow] = out;
    let [kh, kw] = conv.kernel();
    let pixel_blocks = (oh * ow).div_ceil(PIXELS);
    let out_c4 = oc.div_ceil(4);
    let has_residual = io.inputs.len() > 1;
    let flags = conv.bias.as_ref().map_or(0, |_| HAS_BIAS)
        | if has_residual { HAS_RESIDUAL } else { 0 }
        | if conv.relu { RELU } else { 0 };
    let params = ConvParams {
        batch: u32_of(io.batch, "batch")?,
        in_c: u32_of(ic, "in channels")?,
        in_h: u32_of(ih, "height")?,
        in_w: u32_of(iw, "width")?,
        out_c: u32_of(oc, "out channels")?,
        out_h: u32_of(oh, "height")?,
        out_w: u32_of(ow, "width")?,
        kernel_h: kh as u32,
        kernel_w: kw as u32,
        stride_h: u32_of(conv.stride[0], "stride")?,
        stride_w: u32_of(conv.stride[1], "stride")?,
        pad_top: u32_of(conv.pad[0], "padding")?,
        pad_left: u32_of(conv.pad[1], "padding")?,
        out_c4: out_c4 as u32,
        flags,
        pixel_blocks: u32_of(pixel_blocks, "pixels")?,
    };
    super::batch_len(io.batch, out)?;
    super::batch_len(io.batch, io.in_shapes[0])?;
    let packed = pack_weights(conv);
    let weight = storage_init(ctx, &format!("{name}.weight"), &packed)?;
    let bias = storage_init(
        ctx,
        &format!("{name}.bias"),
        conv.bias.as_deref().unwrap_or(&[]),
    )?;
    let params_buf = uniform(ctx, &format!("{name}.params"), &params);
    let pipeline = ctx.pipeline(Kernel::Conv);
    // Unused bindings get a harmless stand-in: the input, bound read-only twice.
    let residual = io.inputs.get(1).copied().unwrap_or(io.inputs[0]);
    let bind_group = bind(
        ctx,
        &pipeline,
        name,
        &[
            io.inputs[0],
            &weight,
            &bias,
            residual,
            io.output,
            &params_buf,
        ],
    );
    let threads = (pixel_blocks * out_c4 * io.batch) as u64;
    Ok(Dispatch {
        label: name.to_string(),
        kernel: Kernel::Conv,
        pipeline,
        bind_group,
        workgroups: workgroups(ctx, threads)?,
        weight_bytes: (packed.len() + conv.bias.as_ref().map_or(0, |b| b.len())) as u64 * 4,
        macs: (io.batch * oc * oh * ow * ic * kh * kw) as u64,
    })
}
