//! Host side of each kernel family: packs weights, fills the shader's params struct, and turns one
//! graph node into one GPU dispatch. Shapes travel in uniforms, so one pipeline serves every layer.
//! Every kernel reads and writes activations in the channel-blocked layout of [`layout`].

pub mod batchnorm;
pub mod conv;
pub mod elementwise;
pub mod layout;
pub mod linear;
pub mod pool;
pub mod residual;

use crate::gpu::{GpuContext, Kernel};
use crate::graph::{Node, Op, Shape};
use crate::precision::Precision;
use anyhow::{Result, bail};
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// Invocations per workgroup in every kernel (`@workgroup_size(64)`).
pub const WORKGROUP: u32 = 64;

/// One recorded kernel launch, with the buffers it owns (weights, params).
pub struct Dispatch {
    pub label: String,
    pub kernel: Kernel,
    pub pipeline: Arc<wgpu::ComputePipeline>,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
    /// Bytes of weights uploaded for this dispatch.
    pub weight_bytes: u64,
    /// Multiply-accumulates per run (for GFLOP/s in profiles).
    pub macs: u64,
}

/// What a dispatch reads and writes.
pub struct Io<'a> {
    pub inputs: Vec<&'a wgpu::Buffer>,
    pub in_shapes: Vec<Shape>,
    pub output: &'a wgpu::Buffer,
    pub batch: usize,
    /// The node's temporaries (sized by [`scratch_floats`]), for kernels that run in several
    /// steps; empty for the others.
    pub scratch: Vec<&'a wgpu::Buffer>,
}

/// Size in bytes of each kernel's params struct as the host writes it; the shader test checks it
/// against the WGSL struct, so the two cannot drift apart.
pub fn params_size(kernel: Kernel) -> usize {
    use std::mem::size_of;
    match kernel {
        Kernel::ConvReference => size_of::<conv::ConvParams>(),
        Kernel::ConvFast(_) | Kernel::ConvFastF16(_) => size_of::<conv::wgsl::FastConvParams>(),
        Kernel::WinogradInput => size_of::<conv::winograd::WinogradInputParams>(),
        Kernel::WinogradOutput => size_of::<conv::winograd::WinogradOutputParams>(),
        Kernel::BatchNorm => size_of::<batchnorm::BatchNormParams>(),
        Kernel::Relu => size_of::<elementwise::ReluParams>(),
        Kernel::MaxPool => size_of::<pool::MaxPoolParams>(),
        Kernel::GlobalAvgPool => size_of::<pool::GlobalAvgPoolParams>(),
        Kernel::ShortcutA => size_of::<residual::ShortcutAParams>(),
        Kernel::Add => size_of::<residual::AddParams>(),
        Kernel::Linear => size_of::<linear::LinearParams>(),
        Kernel::Softmax => size_of::<elementwise::SoftmaxParams>(),
    }
}

/// Floats of the temporaries a node needs (none, or two for Winograd).
pub fn scratch_floats(
    ctx: &GpuContext,
    node: &Node,
    in_shapes: &[Shape],
    batch: usize,
    conv_policy: conv::ConvPolicy,
) -> Vec<usize> {
    match &node.op {
        Op::Conv(c) => conv::scratch_floats(ctx, c, in_shapes[0], node.shape, batch, conv_policy),
        _ => Vec::new(),
    }
}

/// Builds the dispatches for one node of an optimized graph (one, except for multi-step kernels).
/// `precision` applies to the tuned convolutions; every other kernel is f32.
pub fn prepare(
    ctx: &GpuContext,
    node: &Node,
    io: &Io,
    conv_policy: conv::ConvPolicy,
    precision: Precision,
) -> Result<Vec<Dispatch>> {
    if let Op::Conv(c) = &node.op {
        return conv::prepare(ctx, &node.name, c, node.shape, io, conv_policy, precision);
    }
    Ok(vec![match &node.op {
        Op::Conv(_) => unreachable!(),
        Op::BatchNorm(bn) => batchnorm::prepare(ctx, &node.name, bn, node.shape, io),
        Op::Relu => elementwise::prepare_relu(ctx, &node.name, node.shape, io),
        Op::MaxPool(p) => pool::prepare_max(ctx, &node.name, p, node.shape, io),
        Op::GlobalAvgPool => pool::prepare_global_avg(ctx, &node.name, io),
        Op::ShortcutA { stride, pad_before } => {
            residual::prepare_shortcut_a(ctx, &node.name, *stride, *pad_before, node.shape, io)
        }
        Op::Add { relu } => residual::prepare_add(ctx, &node.name, *relu, node.shape, io),
        Op::Linear(l) => linear::prepare(ctx, &node.name, l, io),
        Op::Softmax => elementwise::prepare_softmax(ctx, &node.name, node.shape, io),
        Op::Input => bail!("the input node has no dispatch"),
    }?])
}

/// A read-only storage buffer holding `data` (at least 4 bytes: WebGPU rejects empty bindings).
pub fn storage_init(ctx: &GpuContext, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
    let bytes = data.len() as u64 * 4;
    if bytes > ctx.max_binding() {
        bail!(
            "{label}: {bytes} bytes of weights exceed the adapter's storage binding limit of {} bytes",
            ctx.max_binding()
        );
    }
    let contents: &[u8] = if data.is_empty() {
        &[0; 4]
    } else {
        bytemuck::cast_slice(data)
    };
    Ok(ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE,
        }))
}

pub fn uniform<T: bytemuck::Pod>(ctx: &GpuContext, label: &str, params: &T) -> wgpu::Buffer {
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// Binds `buffers` to bindings 0, 1, 2, ... of group 0.
pub fn bind(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    label: &str,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// Workgroup counts covering `threads` invocations, spilling into y past the per-dimension limit.
/// Kernels rebuild the flat index as `gid.x + gid.y * groups.x * 64`.
pub fn workgroups(ctx: &GpuContext, threads: u64) -> Result<[u32; 3]> {
    let groups = threads.div_ceil(WORKGROUP as u64).max(1);
    let max = ctx.limits.max_compute_workgroups_per_dimension as u64;
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    if y > max {
        bail!("{threads} invocations exceed the adapter's dispatch limits");
    }
    Ok([x as u32, y as u32, 1])
}

/// A read-only storage buffer of f16 values (bit patterns, as [`conv::wgsl::to_f16_bits`] makes
/// them), padded to whole vec4<f16>s (8 bytes), the f16 kernels' element.
pub fn storage_init_f16(ctx: &GpuContext, label: &str, bits: &[u16]) -> Result<wgpu::Buffer> {
    let mut padded = bits.to_vec();
    padded.resize(bits.len().next_multiple_of(4).max(4), 0);
    let bytes = padded.len() as u64 * 2;
    if bytes > ctx.max_binding() {
        bail!(
            "{label}: {bytes} bytes of f16 weights exceed the adapter's storage binding limit of {} bytes",
            ctx.max_binding()
        );
    }
    Ok(ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(&padded),
            usage: wgpu::BufferUsages::STORAGE,
        }))
}

/// Checks that a u32 shape field really fits.
pub fn u32_of(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| anyhow::anyhow!("{what} = {v} does not fit the kernels' 32-bit indices"))
}

/// Floats of a batch of activations of per-image shape `s` (channel-blocked, so channels rounded
/// up to 4), checked against 32-bit indexing.
pub fn batch_len(batch: usize, s: Shape) -> Result<u32> {
    u32_of(batch * layout::blocked_len(s), "activation length")
}
