//! The second pass of split kernels (shaders/split_reduce.wgsl): adds up the partial sums of a
//! split-K convolution, a chunked fully connected layer or a chunked global average pool, adds
//! the bias and applies the epilogue.

use super::u32_of;
use crate::error::Result;
use crate::gpu::{Cost, Dispatch, GpuContext, uniform, workgroups};
use crate::kernels::Kernel;
use crate::kernels::params::SplitReduceParams;

/// What the reduce pass reads and writes: `splits` planes of `len4` vec4s in `partial`, shaped
/// like the output (`out_c4` channel blocks x `out_hw` pixels per image); the bias per block.
pub struct Reduce<'a> {
    pub partial: &'a wgpu::Buffer,
    pub splits: u32,
    pub len4: usize,
    pub out_c4: usize,
    pub out_hw: usize,
    pub bias: &'a wgpu::Buffer,
    /// The residual and the epilogue flags (`None`: no residual, no ReLU).
    pub residual: Option<&'a wgpu::Buffer>,
    pub flags: u32,
    pub output: &'a wgpu::Buffer,
}

pub fn build(ctx: &GpuContext, label: &str, r: Reduce) -> Result<Dispatch> {
    let params = SplitReduceParams {
        len4: u32_of(r.len4, "split reduce length")?,
        splits: r.splits,
        out_c4: u32_of(r.out_c4, "channel blocks")?,
        out_hw: u32_of(r.out_hw, "pixels")?,
        flags: r.flags,
        _pad: [0; 3],
    };
    u32_of(r.len4 * r.splits as usize, "split partial sums")?;
    let label = format!("{label}.reduce");
    // Without a residual, the binding gets a harmless stand-in: the partial sums, read-only.
    let residual = r.residual.unwrap_or(r.partial);
    Ok(Dispatch::new(
        ctx,
        &label,
        Kernel::SplitReduce,
        &[
            r.partial,
            r.bias,
            residual,
            r.output,
            &uniform(ctx, &label, &params),
        ],
        workgroups(ctx, &label, r.len4 as u64)?,
        Cost::default(),
    ))
}
