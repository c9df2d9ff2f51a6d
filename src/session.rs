//! A session: one network planned onto one GPU. Pipelines, weights, activation buffers and bind
//! groups are made once; each run uploads the input, records every dispatch into one command
//! encoder, submits once and reads back the logits (and any requested taps).

use crate::gpu::GpuContext;
use crate::graph::fuse::optimize;
use crate::graph::memory::plan_memory;
use crate::graph::space_to_depth::{SpaceToDepth, fold_stem};
use crate::graph::{Graph, ValueId};
use crate::ops::conv::ConvPolicy;
use crate::ops::layout::{blocked_len, from_blocked, to_blocked};
use crate::ops::{self, Dispatch, Io};
use crate::precision::Precision;
use anyhow::{Result, anyhow, bail, ensure};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Images per forward pass; larger inputs run in chunks of this size.
    pub batch: usize,
    /// Named intermediate values (graph taps such as "stem", "layer1") to read back on each run.
    pub taps: Vec<String>,
    /// Fold batch norm and fuse epilogues (on by default; off to test the unfused kernels).
    pub optimize: bool,
    /// Which convolution kernels to use (the tuned ones by default).
    pub conv: ConvPolicy,
    /// What the convolutions compute in (f32 by default; f16 needs SHADER_F16 and the tuned
    /// kernels, see [`Precision`]).
    pub precision: Precision,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            batch: 1,
            taps: Vec::new(),
            optimize: true,
            conv: ConvPolicy::Auto,
            precision: Precision::F32,
        }
    }
}

/// What one run returns: the graph output for every image, and the requested taps.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// [images, classes] row-major (the graph output flattened per image).
    pub logits: Vec<f32>,
    pub taps: BTreeMap<String, Vec<f32>>,
}

struct Readback {
    name: String,
    slot: usize,
    /// Per-image shape (NCHW on the host side).
    shape: [usize; 3],
    /// f32 values per image on the GPU (channel-blocked).
    per_image: usize,
    /// Offset in the staging buffer, bytes.
    offset: u64,
}

pub struct Session {
    ctx: Arc<GpuContext>,
    /// The optimized graph that runs.
    pub graph: Graph,
    /// Images per forward pass (may be smaller than requested, to fit the adapter's limits).
    pub batch: usize,
    dispatches: Vec<Dispatch>,
    slots: Vec<wgpu::Buffer>,
    input_slot: usize,
    readbacks: Vec<Readback>,
    staging: wgpu::Buffer,
    /// Bytes of activation buffers (the liveness plan's total, temporaries included).
    pub activation_bytes: u64,
    /// Bytes of weights on the GPU.
    pub weight_bytes: u64,
    /// The stem's space-to-depth fold, applied to the input on upload.
    stem_fold: Option<SpaceToDepth>,
}

impl Session {
    /// Plans `graph` on `ctx`. Fails with a clear message if a layer cannot fit the adapter.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(ctx: Arc<GpuContext>, graph: &Graph, opts: &SessionOptions) -> Result<Self> {
        let (session, scopes) = Self::plan(ctx, graph, opts)?;
        pollster::block_on(scopes.check(&session.ctx))?;
        Ok(session)
    }

    /// [`Session::new`] for the browser, where the GPU's verdict on the pipelines is a promise.
    pub async fn new_async(
        ctx: Arc<GpuContext>,
        graph: &Graph,
        opts: &SessionOptions,
    ) -> Result<Self> {
        let (session, scopes) = Self::plan(ctx, graph, opts)?;
        scopes.check(&session.ctx).await?;
        Ok(session)
    }

    /// Makes every buffer, pipeline and bind group, inside error scopes that the caller pops.
    fn plan(
        ctx: Arc<GpuContext>,
        graph: &Graph,
        opts: &SessionOptions,
    ) -> Result<(Self, PlanScopes)> {
        ensure!(opts.batch >= 1, "batch size must be at least 1");
        ctx.check_alive()?;
        ops::conv::check_precision(&ctx, opts.conv, opts.precision)?;
        graph.validate()?;
        let mut graph = if opts.optimize {
            optimize(graph)
        } else {
            graph.clone()
        };
        let mut stem_fold = None;
        if opts.optimize
            && opts.conv != ConvPolicy::Reference
            && let Some((folded, s2d)) = fold_stem(&graph)
        {
            graph = folded;
            stem_fold = Some(s2d);
        }
        let batch = fit_batch(&ctx, &graph, opts.batch)?;
        let mut pinned: Vec<ValueId> = vec![graph.output];
        let mut tap_values = Vec::new();
        for name in &opts.taps {
            let v = *graph
                .taps
                .get(name)
                .ok_or_else(|| anyhow!("the network has no tap named '{name}'"))?;
            pinned.push(v);
            tap_values.push((name.clone(), v));
        }
        // Temporaries of multi-step kernels (Winograd) take part in the liveness plan.
        let temps: Vec<Vec<u64>> = graph
            .nodes
            .iter()
            .map(|node| {
                let in_shapes: Vec<_> = node.inputs.iter().map(|&v| graph.shape(v)).collect();
                if matches!(node.op, crate::graph::Op::Input) {
                    return Vec::new();
                }
                ops::scratch_floats(&ctx, node, &in_shapes, batch, opts.conv)
                    .into_iter()
                    .map(|f| f as u64 * 4)
                    .collect()
            })
            .collect();
        let plan = plan_memory(&graph, batch, &pinned, &temps);
        // Every wgpu error while planning lands in these scopes (never in the uncaptured handler).
        let oom = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let slots: Vec<wgpu::Buffer> = plan
            .slot_bytes
            .iter()
            .enumerate()
            .map(|(i, &bytes)| {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("activation slot {i}")),
                    size: bytes.max(4).next_multiple_of(4),
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let mut dispatches = Vec::with_capacity(graph.nodes.len());
        // An early return drops the scope guards, which pops them (innermost first).
        for (i, node) in graph.nodes.iter().enumerate().skip(1) {
            let io = Io {
                inputs: node
                    .inputs
                    .iter()
                    .map(|&v| &slots[plan.slot_of[v]])
                    .collect(),
                in_shapes: node.inputs.iter().map(|&v| graph.shape(v)).collect(),
                output: &slots[plan.slot_of[i]],
                batch,
                scratch: plan.temp_slots[i].iter().map(|&t| &slots[t]).collect(),
            };
            dispatches.extend(
                ops::prepare(&ctx, node, &io, opts.conv, opts.precision)
                    .map_err(|e| anyhow!("layer '{}': {e}", node.name))?,
            );
        }
        let mut offset = 0u64;
        let readbacks: Vec<Readback> = std::iter::once(("output".to_string(), graph.output))
            .chain(tap_values)
            .map(|(name, v)| {
                let shape = graph.shape(v);
                let r = Readback {
                    name,
                    slot: plan.slot_of[v],
                    shape,
                    per_image: blocked_len(shape),
                    offset,
                };
                offset += (batch * r.per_image * 4) as u64;
                r
            })
            .collect();
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: offset,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let weight_bytes = dispatches.iter().map(|d| d.weight_bytes).sum();
        let session = Self {
            input_slot: plan.slot_of[0],
            activation_bytes: plan.total_bytes(),
            weight_bytes,
            ctx,
            graph,
            batch,
            dispatches,
            slots,
            readbacks,
            staging,
            stem_fold,
        };
        Ok((session, PlanScopes { validation, oom }))
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Per-image input shape (C, H, W).
    pub fn input_shape(&self) -> [usize; 3] {
        self.stem_fold
            .map_or(self.graph.input_shape(), |s| s.original)
    }

    /// Values per image in the output.
    pub fn output_len(&self) -> usize {
        let [c, h, w] = self.graph.output_shape();
        c * h * w
    }

    /// Kernel launches per forward pass.
    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    /// The dispatches in order (labels, kernels, MACs), for profiles.
    pub fn dispatches(&self) -> &[Dispatch] {
        &self.dispatches
    }

    /// Runs any number of images (`input` is [images, C, H, W]), in chunks of `self.batch`.
    pub async fn run_async(&self, input: &[f32]) -> Result<Outputs> {
        let per_image: usize = self.input_shape().iter().product();
        ensure!(
            !input.is_empty() && input.len().is_multiple_of(per_image),
            "input has {} values, not a whole number of {:?} images",
            input.len(),
            self.input_shape()
        );
        let images = input.len() / per_image;
        let mut out = Outputs::default();
        for start in (0..images).step_by(self.batch) {
            let count = (images - start).min(self.batch);
            let mut chunk = input[start * per_image..(start + count) * per_image].to_vec();
            chunk.resize(self.batch * per_image, 0.0);
            let results = self.run_batch(&chunk).await?;
            for (r, data) in self.readbacks.iter().zip(results) {
                let [c, h, w] = r.shape;
                let keep = &data[..count * c * h * w];
                if r.name == "output" {
                    out.logits.extend_from_slice(keep);
                } else {
                    out.taps
                        .entry(r.name.clone())
                        .or_default()
                        .extend_from_slice(keep);
                }
            }
        }
        Ok(out)
    }

    /// Blocking [`Session::run_async`]; returns the outputs of every image.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run(&self, input: &[f32]) -> Result<Outputs> {
        pollster::block_on(self.run_async(input))
    }

    /// Records the whole network for one full batch into one encoder and one submit. With a
    /// query set, dispatch i writes timestamps 2i and 2i + 1 around itself (the set needs
    /// 2 x [`Session::dispatch_count`] queries).
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder, timestamps: Option<&wgpu::QuerySet>) {
        self.encode_range(encoder, timestamps.map(|q| (q, 0)));
    }

    /// [`Session::encode`], where timestamps number from dispatch `first` (earlier dispatches
    /// write none): profiles of networks longer than one query set.
    fn encode_range(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        timestamps: Option<(&wgpu::QuerySet, usize)>,
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("forward"),
            timestamp_writes: None,
        });
        let per_set = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;
        for (i, d) in self.dispatches.iter().enumerate() {
            let query = timestamps
                .filter(|&(_, first)| i >= first && i < first + per_set)
                .map(|(q, first)| (q, 2 * (i - first) as u32));
            if let Some((q, k)) = query {
                pass.write_timestamp(q, k);
            }
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
            if let Some((q, k)) = query {
                pass.write_timestamp(q, k + 1);
            }
        }
    }

    /// Uploads one full batch of NCHW input (without running), converting it to the GPU's
    /// channel-blocked layout.
    pub fn upload(&self, input: &[f32]) {
        let blocked = match &self.stem_fold {
            Some(s2d) => to_blocked(&s2d.apply(input, self.batch), self.batch, s2d.folded),
            None => to_blocked(input, self.batch, self.input_shape()),
        };
        self.ctx.queue.write_buffer(
            &self.slots[self.input_slot],
            0,
            bytemuck::cast_slice(&blocked),
        );
    }

    /// GPU time of every dispatch, in seconds (the median over `iters` runs of one full batch of
    /// `input`), from timestamps written around each dispatch. Needs TIMESTAMP_QUERY and
    /// TIMESTAMP_QUERY_INSIDE_PASSES.
    pub async fn profile_async(&self, input: &[f32], iters: usize) -> Result<Vec<f64>> {
        ensure!(
            self.ctx.can_profile(),
            "adapter '{}' cannot write timestamps inside compute passes",
            self.ctx.info.name
        );
        let dev = &self.ctx.device;
        let per_image: usize = self.input_shape().iter().product();
        let mut batch_input = input[..input.len().min(self.batch * per_image)].to_vec();
        batch_input.resize(self.batch * per_image, 0.0);
        self.upload(&batch_input);
        let mut times = vec![Vec::with_capacity(iters); self.dispatches.len()];
        let period = self.ctx.queue.get_timestamp_period() as f64 * 1e-9;
        // At most QUERY_SET_MAX_QUERIES timestamps per set: profile long networks in pieces.
        let per_set = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;
        for start in (0..self.dispatches.len()).step_by(per_set) {
            let end = (start + per_set).min(self.dispatches.len());
            let count = 2 * (end - start) as u32;
            let queries = dev.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let bytes = count as u64 * 8;
            let resolve = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile read-back"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            for _ in 0..iters.max(1) {
                let mut encoder = dev.create_command_encoder(&Default::default());
                self.encode_range(&mut encoder, Some((&queries, start)));
                encoder.resolve_query_set(&queries, 0..count, &resolve, 0);
                encoder.copy_buffer_to_buffer(&resolve, 0, &staging, 0, bytes);
                self.ctx.queue.submit([encoder.finish()]);
                let raw = read_buffer(&self.ctx, &staging).await?;
                let ticks: &[u64] = bytemuck::cast_slice(&raw);
                for (i, pair) in ticks.chunks(2).enumerate() {
                    times[start + i].push(pair[1].saturating_sub(pair[0]) as f64 * period);
                }
            }
        }
        Ok(times
            .into_iter()
            .map(|mut t| {
                t.sort_by(f64::total_cmp);
                t[t.len() / 2]
            })
            .collect())
    }

    /// Blocking [`Session::profile_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn profile(&self, input: &[f32], iters: usize) -> Result<Vec<f64>> {
        pollster::block_on(self.profile_async(input, iters))
    }

    async fn run_batch(&self, input: &[f32]) -> Result<Vec<Vec<f32>>> {
        // A lost device (driver reset, GPU removed, `destroy()`) accepts every call silently and
        // then fails to map the results: check before and after, and say what happened.
        self.ctx.check_alive()?;
        let errors = self
            .ctx
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        self.upload(input);
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        self.encode(&mut encoder, None);
        for r in &self.readbacks {
            let bytes = (self.batch * r.per_image * 4) as u64;
            encoder.copy_buffer_to_buffer(&self.slots[r.slot], 0, &self.staging, r.offset, bytes);
        }
        self.ctx.queue.submit([encoder.finish()]);
        if let Some(e) = errors.pop().await {
            self.ctx.check_alive()?;
            bail!("the GPU rejected the run: {e}");
        }
        let bytes = match read_buffer(&self.ctx, &self.staging).await {
            Ok(b) => b,
            Err(e) => {
                self.ctx.check_alive()?;
                return Err(e);
            }
        };
        self.ctx.check_alive()?;
        let floats: &[f32] = bytemuck::cast_slice(&bytes);
        Ok(self
            .readbacks
            .iter()
            .map(|r| {
                let data = &floats[r.offset as usize / 4..][..self.batch * r.per_image];
                from_blocked(data, self.batch, r.shape)
            })
            .collect())
    }
}

/// The largest batch (up to `wanted`) whose every activation fits one storage binding.
fn fit_batch(ctx: &GpuContext, graph: &Graph, wanted: usize) -> Result<usize> {
    // In the blocked layout (channels padded to 4), in u64: on wasm32 `usize` is 32 bits and a
    // huge input must be refused, not wrap around.
    let bytes = |n: &crate::graph::Node| {
        [n.shape[0].div_ceil(4) * 4, n.shape[1], n.shape[2]]
            .iter()
            .fold(4u64, |b, &d| b.saturating_mul(d as u64))
    };
    // The first of the largest: the layer where the trouble starts.
    let Some(largest) = graph.nodes.iter().rev().max_by_key(|n| bytes(n)) else {
        bail!("the graph is empty");
    };
    let (name, need) = (&largest.name, bytes(largest));
    let limit = ctx.max_binding();
    let fits = (limit / need.max(4)) as usize;
    if fits == 0 {
        bail!(
            "layer '{name}' needs {need} bytes for one image's {:?} output but adapter '{}' allows {limit} bytes per storage binding (max_storage_buffer_binding_size); use a smaller input",
            largest.shape,
            ctx.info.name
        );
    }
    if fits < wanted {
        log::warn!(
            "batch {wanted} does not fit adapter '{}' (layer '{name}' needs {need} bytes per image, {limit} bytes per binding): running in chunks of {fits}",
            ctx.info.name
        );
    }
    Ok(wanted.min(fits))
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
        .map_err(|e| anyhow!("GPU error while waiting for results: {e}"))?;
    // The browser resolves the mapping on its own event loop.
    #[cfg(target_arch = "wasm32")]
    let _ = ctx;
    rx.await
        .map_err(|_| anyhow!("the device was lost before results came back"))?
        .map_err(|e| anyhow!("cannot read results back: {e}"))?;
    let data = slice
        .get_mapped_range()
        .map_err(|e| anyhow!("cannot read results back: {e:?}"))?
        .to_vec();
    buffer.unmap();
    Ok(data)
}

/// The error scopes around planning, innermost (validation) last.
struct PlanScopes {
    validation: wgpu::ErrorScopeGuard,
    oom: wgpu::ErrorScopeGuard,
}

impl PlanScopes {
    /// Pops both scopes (natively at once; in the browser the answer is a promise) and turns
    /// what the GPU reported into a clear error.
    async fn check(self, ctx: &GpuContext) -> Result<()> {
        let validation = self.validation.pop().await;
        if let Some(e) = self.oom.pop().await {
            bail!("the GPU ran out of memory planning the network: {e}");
        }
        if let Some(e) = validation {
            ctx.check_alive()?;
            bail!("the GPU rejected the network's pipelines: {e}");
        }
        Ok(())
    }
}
