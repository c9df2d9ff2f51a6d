//! Convolution: weight packing and the dispatches of each algorithm the plan can choose
//! (`plan::conv` chooses; this module only builds):
//! - `reference`: shaders/conv_reference.wgsl, a plain direct loop kept as the yardstick;
//! - `direct`: the generated register-blocked implicit GEMM (`kernels::conv_direct`), whole or
//!   split-K (partial sums added up by shaders/split_reduce.wgsl);
//! - `winograd`: F(2x2, 3x3) for 3x3 stride-1 layers, on top of the batched 1x1 kernel;
//! - `tiled`: the workgroup-tiled implicit GEMM (`kernels::conv_tiled`), whole or split-K, f32.
//!
//! `Precision::F16` runs every generated kernel (so every conv of a network, Winograd's products
//! included) with f16 weights and arithmetic; the reference kernel is f32 only.

pub mod direct;
pub mod reference;
pub mod tiled;
pub mod winograd;

use super::Io;
use super::reduce::{self, Reduce};
use crate::error::Result;
use crate::gpu::{Dispatch, GpuContext, storage_f16, storage_f32};
use crate::graph::{Conv, Shape};
use crate::kernels::{HAS_RESIDUAL, RELU};
use crate::layout::blocked_len;
use crate::plan::conv::ConvAlgo;
use crate::precision::Precision;

pub fn build(
    ctx: &GpuContext,
    name: &str,
    conv: &Conv,
    out: Shape,
    io: &Io,
    algo: ConvAlgo,
    precision: Precision,
) -> Result<Vec<Dispatch>> {
    match algo {
        ConvAlgo::Reference => Ok(vec![reference::build(ctx, name, conv, out, io)?]),
        ConvAlgo::Direct(tile) => Ok(vec![direct::build(
            ctx, name, conv, out, io, tile, precision,
        )?]),
        ConvAlgo::SplitK { tile, splits } => {
            direct::build_split(ctx, name, conv, out, io, tile, splits, precision)
        }
        ConvAlgo::Winograd(tile) => winograd::build(ctx, name, conv, out, io, tile, precision),
        ConvAlgo::Tiled { tile, splits } => tiled::build(ctx, name, conv, out, io, tile, splits),
    }
}

/// The second pass of a split-K convolution (direct or tiled): adds the `splits` partial sums in
/// `partial`, then `bias` (padded to whole vec4s) and the epilogue, into the node's output.
#[allow(clippy::too_many_arguments)]
fn split_reduce(
    ctx: &GpuContext,
    name: &str,
    conv: &Conv,
    out: Shape,
    io: &Io,
    partial: &wgpu::Buffer,
    splits: u32,
    bias: &[f32],
) -> Result<Dispatch> {
    let bias_buf = storage_f32(ctx, &format!("{name}.bias"), bias)?;
    reduce::build(
        ctx,
        name,
        Reduce {
            partial,
            splits,
            len4: io.batch * blocked_len(out) / 4,
            out_c4: out[0].div_ceil(4),
            out_hw: out[1] * out[2],
            bias: &bias_buf,
            residual: io.inputs.get(1).copied(),
            flags: flags(conv, io),
            output: io.output,
        },
    )
}

/// The epilogue flags of a conv node: a residual when it has a second input, and its ReLU.
fn flags(conv: &Conv, io: &Io) -> u32 {
    (if io.inputs.len() > 1 { HAS_RESIDUAL } else { 0 }) | if conv.relu { RELU } else { 0 }
}

/// The bias padded with zeros to `blocks` vec4s (zero without a bias).
fn bias_blocks(conv: &Conv, blocks: usize) -> Vec<f32> {
    let mut b = conv
        .bias
        .clone()
        .unwrap_or_else(|| vec![0.0; conv.out_channels()]);
    b.resize(blocks * 4, 0.0);
    b
}

/// Packed weights as the kernel reads them.
#[derive(Clone, Copy)]
enum Weights<'a> {
    F32(&'a [f32]),
    /// f16 bit patterns.
    F16(&'a [u16]),
}

impl Weights<'_> {
    /// Uploads them as a read-only storage buffer; also returns its size in bytes.
    fn upload(self, ctx: &GpuContext, label: &str) -> Result<(wgpu::Buffer, u64)> {
        Ok(match self {
            Weights::F32(w) => (storage_f32(ctx, label, w)?, w.len() as u64 * 4),
            Weights::F16(w) => (storage_f16(ctx, label, w)?, w.len() as u64 * 2),
        })
    }
}

/// Uploads packed f32 weights in `precision` (f16: rounded to nearest even; beyond f16's range,
/// infinity); returns the buffer and its bytes.
fn upload_weights(
    ctx: &GpuContext,
    label: &str,
    packed: &[f32],
    precision: Precision,
) -> Result<(wgpu::Buffer, u64)> {
    match precision {
        Precision::F32 => Weights::F32(packed).upload(ctx, label),
        Precision::F16 => Weights::F16(&to_f16_bits(packed)).upload(ctx, label),
    }
}

/// f32 values as f16 bit patterns, for buffers the f16 kernels read.
pub fn to_f16_bits(values: &[f32]) -> Vec<u16> {
    values
        .iter()
        .map(|&v| half::f16::from_f32(v).to_bits())
        .collect()
}
