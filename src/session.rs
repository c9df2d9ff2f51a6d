//! A session: one network planned onto one GPU. The plan (`plan::lower`) says what runs; here the
//! activation buffers are made, each step's weights are uploaded (then let go: the session keeps
//! no host copy of the weights) and its dispatches built, once. Each run uploads the input,
//! records every dispatch into one command encoder, submits once and reads back the logits (and
//! any requested taps).

use crate::error::{Error, Result, require};
use crate::gpu::{Dispatch, GpuContext, read_buffer};
use crate::graph::space_to_depth::SpaceToDepth;
use crate::graph::{Graph, Node, Op, Shape};
use crate::layout::{blocked_len, from_blocked, to_blocked};
use crate::ops::{self, Io};
pub use crate::plan::SessionOptions;
use crate::plan::{self, Plan, Step};
use crate::tune::{self, TuneReport};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one run returns: the graph output for every image, and the requested taps.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// [images, classes] row-major (the graph output flattened per image).
    pub logits: Vec<f32>,
    /// Each requested tap, [images, C, H, W] row-major.
    pub taps: BTreeMap<String, Vec<f32>>,
}

struct Readback {
    name: String,
    slot: usize,
    /// Per-image shape (NCHW on the host side).
    shape: Shape,
    /// f32 values per image on the GPU (channel-blocked).
    per_image: usize,
    /// Offset in the staging buffer, bytes.
    offset: u64,
}

/// A network planned on one GPU, ready to run.
pub struct Session {
    ctx: Arc<GpuContext>,
    /// Images per forward pass (may be smaller than requested, to fit the adapter's limits).
    pub batch: usize,
    steps: Vec<Step>,
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
    /// The graph's input (after the fold) and output shapes, per image.
    graph_input: Shape,
    output_shape: Shape,
    macs: u64,
    tuning: TuneReport,
}

impl Session {
    /// Plans `graph` on `ctx`, taking its weights (they go to the GPU, and no host copy stays).
    /// Fails with a clear message if a layer cannot fit the adapter.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(ctx: Arc<GpuContext>, graph: Graph, opts: &SessionOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(ctx, graph, opts))
    }

    /// [`Session::new`] for the browser, where the GPU's verdict on the pipelines is a promise.
    pub async fn new_async(
        ctx: Arc<GpuContext>,
        graph: Graph,
        opts: &SessionOptions,
    ) -> Result<Self> {
        let mut plan = plan::lower(&ctx, graph, opts)?;
        let tuning = if tune::applies(opts.conv, opts.tune) {
            tune::tune_plan(&ctx, &mut plan, opts.tune, opts.tune_budget).await?
        } else {
            TuneReport::default()
        };
        let (mut session, scopes) = Self::build(ctx, plan)?;
        scopes.check(&session.ctx).await?;
        session.tuning = tuning;
        Ok(session)
    }

    /// What tuning did (empty with `Tune::Off`).
    pub fn tuning(&self) -> &TuneReport {
        &self.tuning
    }

    /// Makes every buffer, pipeline and bind group, inside error scopes that the caller pops.
    fn build(ctx: Arc<GpuContext>, plan: Plan) -> Result<(Self, PlanScopes)> {
        let mut graph = plan.graph;
        let (batch, memory) = (plan.batch, &plan.memory);
        let graph_input = graph.input_shape();
        let output_shape = graph.output_shape();
        let macs = graph.macs();
        // Every wgpu error while planning lands in these scopes (never in the uncaptured handler).
        let oom = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let slots: Vec<wgpu::Buffer> = memory
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
        let mut dispatches = Vec::with_capacity(plan.steps.len());
        // An early return drops the scope guards, which pops them (innermost first).
        for step in &plan.steps {
            let i = step.node;
            // Take the node out (a shell with its shape stays for the readers of its value):
            // its weights are dropped as soon as they are on the GPU.
            let shell = Node {
                name: String::new(),
                op: Op::Input,
                inputs: Vec::new(),
                shape: graph.nodes[i].shape,
            };
            let node = std::mem::replace(&mut graph.nodes[i], shell);
            let io = Io {
                inputs: node
                    .inputs
                    .iter()
                    .map(|&v| &slots[memory.slot_of[v]])
                    .collect(),
                in_shapes: node.inputs.iter().map(|&v| graph.shape(v)).collect(),
                output: &slots[memory.slot_of[i]],
                batch,
                scratch: memory.temp_slots[i].iter().map(|&t| &slots[t]).collect(),
            };
            dispatches.extend(
                ops::build(&ctx, &node, step, &io, plan.precision)
                    .map_err(|e| e.in_layer(&node.name))?,
            );
        }
        let mut offset = 0u64;
        let readbacks: Vec<Readback> = plan
            .readbacks
            .iter()
            .map(|(name, v)| {
                let shape = graph.shape(*v);
                let r = Readback {
                    name: name.clone(),
                    slot: memory.slot_of[*v],
                    shape,
                    per_image: blocked_len(shape),
                    offset,
                };
                offset += (batch * r.per_image * 4) as u64;
                r
            })
            .collect();
        // What is left of the graph is shells: every weight is on the GPU now.
        drop(graph);
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: offset,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let weight_bytes = dispatches.iter().map(|d| d.cost.weight_bytes).sum();
        let session = Self {
            input_slot: memory.slot_of[0],
            activation_bytes: memory.total_bytes(),
            weight_bytes,
            ctx,
            batch,
            steps: plan.steps,
            dispatches,
            slots,
            readbacks,
            staging,
            stem_fold: plan.stem_fold,
            graph_input,
            output_shape,
            macs,
            tuning: TuneReport::default(),
        };
        Ok((session, PlanScopes { validation, oom }))
    }

    /// The GPU the session runs on.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Per-image input shape (C, H, W), as the caller provides it.
    pub fn input_shape(&self) -> Shape {
        self.stem_fold.map_or(self.graph_input, |s| s.original)
    }

    /// Per-image output shape (C, H, W).
    pub fn output_shape(&self) -> Shape {
        self.output_shape
    }

    /// Values per image in the output.
    pub fn output_len(&self) -> usize {
        self.output_shape.iter().product()
    }

    /// Multiply-accumulates per image.
    pub fn macs(&self) -> u64 {
        self.macs
    }

    /// The plan's steps: one per layer, with the kernel chosen for it.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Kernel launches per forward pass.
    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    /// The dispatches in order (labels, kernels, costs), for profiles.
    pub fn dispatches(&self) -> &[Dispatch] {
        &self.dispatches
    }

    /// Runs any number of images (`input` is [images, C, H, W]), in chunks of `self.batch`.
    pub async fn run_async(&self, input: &[f32]) -> Result<Outputs> {
        let per_image: usize = self.input_shape().iter().product();
        require!(
            !input.is_empty() && input.len().is_multiple_of(per_image),
            InvalidInput,
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
                let keep = &data[..count * r.shape.iter().product::<usize>()];
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
        self.encode_range(encoder, timestamps.map(|q| (q, 0)), None);
    }

    /// [`Session::encode`], where timestamps number from dispatch `first` (earlier dispatches
    /// write none): profiles of networks longer than one query set.
    /// `pass_times` gets a timestamp at the start and at the end of the whole pass (queries 0
    /// and 1).
    fn encode_range(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        timestamps: Option<(&wgpu::QuerySet, usize)>,
        pass_times: Option<&wgpu::QuerySet>,
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("forward"),
            timestamp_writes: pass_times.map(|q| wgpu::ComputePassTimestampWrites {
                query_set: q,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            }),
        });
        let per_set = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;
        for (i, d) in self.dispatches.iter().enumerate() {
            let query = timestamps
                .filter(|&(_, first)| i >= first && i < first + per_set)
                .map(|(q, first)| (q, 2 * (i - first) as u32));
            if let Some((q, k)) = query {
                pass.write_timestamp(q, k);
            }
            d.record(&mut pass);
            if let Some((q, k)) = query {
                pass.write_timestamp(q, k + 1);
            }
        }
    }

    /// Uploads the first batch of `input`, cut or padded with zeros to exactly one full batch
    /// (what profiles and pass times run).
    fn upload_full_batch(&self, input: &[f32]) {
        let per_image: usize = self.input_shape().iter().product();
        let mut batch_input = input[..input.len().min(self.batch * per_image)].to_vec();
        batch_input.resize(self.batch * per_image, 0.0);
        self.upload(&batch_input);
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
        require!(
            self.ctx.can_profile(),
            Unsupported,
            "adapter '{}' cannot write timestamps inside compute passes",
            self.ctx.info.name
        );
        let dev = &self.ctx.device;
        self.upload_full_batch(input);
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
                self.encode_range(&mut encoder, Some((&queries, start)), None);
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

    /// GPU time of one whole forward pass in seconds (the median over `iters` runs of one full
    /// batch of `input`), from timestamps at the pass's start and end: what the GPU spent,
    /// launch gaps and barriers included, without the submit, upload and read-back a run's wall
    /// time also counts. `None` where the adapter has no TIMESTAMP_QUERY.
    pub async fn pass_time_async(&self, input: &[f32], iters: usize) -> Result<Option<f64>> {
        if self.ctx.timestamps() == crate::gpu::Timestamps::None {
            return Ok(None);
        }
        let dev = &self.ctx.device;
        self.upload_full_batch(input);
        let queries = dev.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass time"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let buffer = |label, usage| {
            dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage,
                mapped_at_creation: false,
            })
        };
        let resolve = buffer(
            "pass time resolve",
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        );
        let staging = buffer(
            "pass time read-back",
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let period = self.ctx.queue.get_timestamp_period() as f64 * 1e-9;
        let mut times = Vec::with_capacity(iters.max(1));
        for _ in 0..iters.max(1) {
            let mut encoder = dev.create_command_encoder(&Default::default());
            self.encode_range(&mut encoder, None, Some(&queries));
            encoder.resolve_query_set(&queries, 0..2, &resolve, 0);
            encoder.copy_buffer_to_buffer(&resolve, 0, &staging, 0, 16);
            self.ctx.queue.submit([encoder.finish()]);
            let raw = read_buffer(&self.ctx, &staging).await?;
            let ticks: &[u64] = bytemuck::cast_slice(&raw);
            times.push(ticks[1].saturating_sub(ticks[0]) as f64 * period);
        }
        times.sort_by(f64::total_cmp);
        Ok(Some(times[times.len() / 2]))
    }

    /// Blocking [`Session::pass_time_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn pass_time(&self, input: &[f32], iters: usize) -> Result<Option<f64>> {
        pollster::block_on(self.pass_time_async(input, iters))
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
            return Err(Error::GpuRejected(format!("the GPU rejected the run: {e}")));
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
            return Err(Error::GpuRejected(format!(
                "the GPU ran out of memory planning the network: {e}"
            )));
        }
        if let Some(e) = validation {
            ctx.check_alive()?;
            return Err(Error::GpuRejected(format!(
                "the GPU rejected the network's pipelines: {e}"
            )));
        }
        Ok(())
    }
}
