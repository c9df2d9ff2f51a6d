//! The reference convolution (shaders/conv_reference.wgsl): one invocation per 4 output channels
//! x 4 consecutive pixels of one image, a plain loop over input channels and the window.

use super::super::{Io, u32_of};
use super::{bias_blocks, flags};
use crate::error::Result;
use crate::gpu::{Cost, Dispatch, GpuContext, storage_f32, uniform, workgroups};
use crate::graph::{Conv, Shape};
use crate::kernels::Kernel;
use crate::kernels::params::ConvReferenceParams;

/// Output pixels per invocation (`PIXELS` in conv_reference.wgsl).
const PIXELS: usize = 4;

/// Repacks `[out_c][in_c][kh][kw]` weights as `[in_c * kh * kw][out_c rounded up to 4]`, so that one
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

pub fn build(ctx: &GpuContext, name: &str, conv: &Conv, out: Shape, io: &Io) -> Result<Dispatch> {
    let [ic, ih, iw] = io.in_shapes[0];
    let [oc, oh, ow] = out;
    let [kh, kw] = conv.kernel();
    let pixel_blocks = (oh * ow).div_ceil(PIXELS);
    let out_c4 = oc.div_ceil(4);
    let params = ConvReferenceParams {
        batch: u32_of(io.batch, "batch")?,
        in_c: u32_of(ic, "in channels")?,
        in_h: u32_of(ih, "height")?,
        in_w: u32_of(iw, "width")?,
        out_c: u32_of(oc, "out channels")?,
        out_h: u32_of(oh, "height")?,
        out_w: u32_of(ow, "width")?,
        kernel_h: u32_of(kh, "kernel")?,
        kernel_w: u32_of(kw, "kernel")?,
        stride_h: u32_of(conv.stride[0], "stride")?,
        stride_w: u32_of(conv.stride[1], "stride")?,
        pad_top: u32_of(conv.pad[0], "padding")?,
        pad_left: u32_of(conv.pad[1], "padding")?,
        out_c4: out_c4 as u32,
        flags: flags(conv, io),
        pixel_blocks: u32_of(pixel_blocks, "pixels")?,
    };
    let packed = pack_weights(conv);
    let bias = bias_blocks(conv, out_c4);
    let weight = storage_f32(ctx, &format!("{name}.weight"), &packed)?;
    let bias_buf = storage_f32(ctx, &format!("{name}.bias"), &bias)?;
    // Without a residual, the binding gets a harmless stand-in: the input, bound read-only twice.
    let residual = io.inputs.get(1).copied().unwrap_or(io.inputs[0]);
    let threads = (pixel_blocks * out_c4 * io.batch) as u64;
    Ok(Dispatch::new(
        ctx,
        name,
        Kernel::ConvReference,
        &[
            io.inputs[0],
            &weight,
            &bias_buf,
            residual,
            io.output,
            &uniform(ctx, &format!("{name}.params"), &params),
        ],
        workgroups(ctx, name, threads)?,
        Cost {
            weight_bytes: (packed.len() + bias.len()) as u64 * 4,
            macs: (io.batch * oc * oh * ow * ic * kh * kw) as u64,
        },
    ))
}
