//! Fully connected layer (shaders/linear.wgsl). The weight matrix is reordered at load time to
//! the channel-blocked order of its input (see `layout`), so the kernel is a dot product; long
//! ones run in chunks added up by the split reduce (see `plan::LINEAR_CHUNK4`).

use super::reduce::{self, Reduce};
use super::{Io, u32_of};
use crate::error::{Result, fail};
use crate::gpu::{Cost, Dispatch, GpuContext, storage_f32, uniform, workgroups};
use crate::graph::{Linear, Shape};
use crate::kernels::Kernel;
use crate::kernels::params::LinearParams;
use crate::layout::{blocked_len, to_blocked};
use crate::plan::LINEAR_CHUNK4;

/// [out][C*H*W] weights -> [out][blocked input order], zero columns for padding channels.
pub fn pack_weights(lin: &Linear, input: Shape) -> Vec<f32> {
    let out = lin.weight.shape[0];
    // Each row is an NCHW "image" of the input's shape: block it like an activation.
    to_blocked(&lin.weight.data, out, input)
}

pub fn build(
    ctx: &GpuContext,
    name: &str,
    lin: &Linear,
    io: &Io,
    chunks: u32,
) -> Result<Vec<Dispatch>> {
    let [out, inp] = [lin.weight.shape[0], lin.weight.shape[1]];
    let input = io.in_shapes[0];
    let in_len4 = blocked_len(input) / 4;
    let out_len = out.div_ceil(4) * 4;
    let params = LinearParams {
        batch: u32_of(io.batch, "batch")?,
        in_len4: u32_of(in_len4, "in features")?,
        out_features: u32_of(out, "out features")?,
        out_len: u32_of(out_len, "out features")?,
        chunk4: u32_of(LINEAR_CHUNK4.min(in_len4), "in features")?,
        chunks,
        _pad: [0; 2],
    };
    u32_of(io.batch * out_len * chunks as usize, "linear output length")?;
    let packed = pack_weights(lin, input);
    let weight = storage_f32(ctx, &format!("{name}.weight"), &packed)?;
    // Padded to whole vec4s: the reduce pass reads the bias per block of 4 outputs.
    let mut bias = lin.bias.clone().unwrap_or_else(|| vec![0.0; out]);
    bias.resize(out_len, 0.0);
    let bias_buf = storage_f32(ctx, &format!("{name}.bias"), &bias)?;
    let cost = Cost {
        weight_bytes: (packed.len() + out_len) as u64 * 4,
        macs: (io.batch * out * inp) as u64,
    };
    drop(packed);
    let output = match (chunks, io.scratch.as_slice()) {
        (1, _) => io.output,
        (_, &[partial]) => partial,
        _ => fail!(
            InvalidGraph,
            "layer '{name}': a chunked linear layer needs one scratch buffer"
        ),
    };
    let label = if chunks > 1 {
        format!("{name}.chunks")
    } else {
        name.to_string()
    };
    let threads = (io.batch * out_len) as u64 * chunks as u64;
    let first = Dispatch::new(
        ctx,
        &label,
        Kernel::Linear,
        &[
            io.inputs[0],
            &weight,
            &bias_buf,
            output,
            &uniform(ctx, &format!("{name}.params"), &params),
        ],
        workgroups(ctx, &label, threads)?,
        cost,
    );
    if chunks == 1 {
        return Ok(vec![first]);
    }
    let second = reduce::build(
        ctx,
        name,
        Reduce {
            partial: output,
            splits: chunks,
            len4: io.batch * out_len / 4,
            out_c4: out_len / 4,
            out_hw: 1,
            bias: &bias_buf,
            residual: None,
            flags: 0,
            output: io.output,
        },
    )?;
    Ok(vec![first, second])
}
