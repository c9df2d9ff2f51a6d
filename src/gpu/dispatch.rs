//! One recorded kernel launch ([`Dispatch`], made by one constructor), and the buffer helpers
//! every op's host side uses to make one: weights, params, workgroup counts, read-back.

use super::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::{Kernel, WORKGROUP};
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// What a dispatch costs, for profiles and memory reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cost {
    /// Bytes of weights uploaded for this dispatch.
    pub weight_bytes: u64,
    /// Multiply-accumulates per run (for GFLOP/s in profiles).
    pub macs: u64,
}

/// One kernel launch with everything it binds, ready to record.
pub struct Dispatch {
    /// The layer (and step) it belongs to, e.g. `layer1.0.conv1.winograd_in`.
    pub label: String,
    /// The kernel it launches.
    pub kernel: Kernel,
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    /// Workgroups launched in x, y, z.
    pub workgroups: [u32; 3],
    /// Its weights and multiply-accumulates.
    pub cost: Cost,
}

impl Dispatch {
    /// The kernel's pipeline with `buffers` bound to bindings 0, 1, 2, ... of group 0, launched
    /// over `workgroups`.
    pub fn new(
        ctx: &GpuContext,
        label: impl Into<String>,
        kernel: Kernel,
        buffers: &[&wgpu::Buffer],
        workgroups: [u32; 3],
        cost: Cost,
    ) -> Self {
        let label = label.into();
        let pipeline = ctx.pipeline(kernel);
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Self {
            label,
            kernel,
            pipeline,
            bind_group,
            workgroups,
            cost,
        }
    }

    /// Records the launch into a compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

/// The limit error for a buffer of `need` bytes that one binding cannot cover.
fn binding_limit(ctx: &GpuContext, label: &str, what: &str, need: u64) -> Error {
    Error::AdapterLimit {
        layer: label.to_string(),
        limit: "max_storage_buffer_binding_size",
        need,
        allowed: ctx.max_binding(),
        message: format!(
            "{label}: {need} bytes of {what} exceed the adapter's storage binding limit of {} bytes",
            ctx.max_binding()
        ),
    }
}

/// A read-only storage buffer holding `data` (at least 4 bytes: WebGPU rejects empty bindings).
pub fn storage_f32(ctx: &GpuContext, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
    let bytes = data.len() as u64 * 4;
    if bytes > ctx.max_binding() {
        return Err(binding_limit(ctx, label, "weights", bytes));
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

/// A read-only storage buffer of f16 values (bit patterns), padded to whole `vec4<f16>`s
/// (8 bytes), the f16 kernels' element.
pub fn storage_f16(ctx: &GpuContext, label: &str, bits: &[u16]) -> Result<wgpu::Buffer> {
    let mut padded = bits.to_vec();
    padded.resize(bits.len().next_multiple_of(4).max(4), 0);
    let bytes = padded.len() as u64 * 2;
    if bytes > ctx.max_binding() {
        return Err(binding_limit(ctx, label, "f16 weights", bytes));
    }
    Ok(ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(&padded),
            usage: wgpu::BufferUsages::STORAGE,
        }))
}

/// A uniform buffer holding one params struct.
pub fn uniform<T: bytemuck::Pod>(ctx: &GpuContext, label: &str, params: &T) -> wgpu::Buffer {
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// Workgroup counts covering `threads` invocations, spilling into y past the per-dimension limit.
/// Kernels rebuild the flat index with `flat_index` (shaders/fragments/flat_index.wgsl).
pub fn workgroups(ctx: &GpuContext, label: &str, threads: u64) -> Result<[u32; 3]> {
    let groups = threads.div_ceil(WORKGROUP as u64).max(1);
    let max = ctx.limits.max_compute_workgroups_per_dimension as u64;
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    if y > max {
        return Err(Error::AdapterLimit {
            layer: label.to_string(),
            limit: "max_compute_workgroups_per_dimension",
            need: y,
            allowed: max,
            message: format!(
                "{label}: {threads} invocations exceed the adapter's dispatch limits ({max} x {max} workgroups of {WORKGROUP})"
            ),
        });
    }
    Ok([x as u32, y as u32, 1])
}

/// Waits for the device and copies a MAP_READ buffer's contents out.
pub async fn read_buffer(ctx: &GpuContext, buffer: &wgpu::Buffer) -> Result<Vec<u8>> {
    let slice = buffer.slice(..);
    let (tx, rx) = futures::channel::oneshot::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::GpuRejected(format!("GPU error while waiting for results: {e}")))?;
    // The browser resolves the mapping on its own event loop.
    #[cfg(target_arch = "wasm32")]
    let _ = ctx;
    rx.await
        .map_err(|_| Error::GpuRejected("the device was lost before results came back".into()))?
        .map_err(|e| Error::GpuRejected(format!("cannot read results back: {e}")))?;
    let data = slice
        .get_mapped_range()
        .map_err(|e| Error::GpuRejected(format!("cannot read results back: {e:?}")))?
        .to_vec();
    buffer.unmap();
    Ok(data)
}
