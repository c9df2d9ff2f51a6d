//! The GPU trainer: the unfused graph (what `Arch::build` returns) trained with SGD on one fixed
//! batch size. Every dispatch of a step (forward in train mode, loss, backward, optimizer) is
//! recorded once, at construction; a step writes the batch, its labels and the learning rate,
//! submits once and reads back only the per-image losses.
//!
//! Memory: every value of the graph keeps its activation (the backward pass reads them) and its
//! gradient; parameters, their gradients and momentum live in three flat buffers that share
//! offsets, so one SGD dispatch updates the whole net.

use super::Hyper;
use super::state_dict::{self, Param, ParamKind};
use crate::error::{Error, Result, fail, require};
use crate::gpu::GpuContext;
use crate::gpu::{Cost, Dispatch, read_buffer, uniform, workgroups};
use crate::graph::{Graph, Op, Shape, ValueId};
use crate::kernels::train::{
    ACCUMULATE, ADD, MASK, SumChunksParams, TrainBatchNormParams, TrainConvParams,
    TrainLinearParams, TrainPointwiseParams, TrainPoolParams, TrainSgdParams,
};
use crate::kernels::{Kernel, RELU, TrainKernel, WORKGROUP};
use crate::ops::u32_of;
use crate::tensor::Tensor;
use std::sync::Arc;

/// Terms of a weight gradient's sum one invocation adds up (Mesa stops any shader loop after
/// 65,535 iterations; more chunks also mean more parallel work on small layers).
const WEIGHT_GRAD_CHUNK: usize = 4096;
/// The most iterations any training kernel's loop may run.
const LOOP_CAP: usize = 65_535;

/// Trains a graph on the GPU, one batch of a fixed size per step.
pub struct Trainer {
    ctx: Arc<GpuContext>,
    graph: Graph,
    params: Vec<Param>,
    /// Where each param starts in the flat parameter, gradient and velocity buffers.
    offsets: Vec<usize>,
    /// Where each batch-norm node's statistics start in the running and saved buffers.
    stats_offsets: Vec<Option<usize>>,
    stats_len: usize,
    param_len: usize,
    batch: usize,
    hyper: Hyper,
    steps: i64,
    weights: wgpu::Buffer,
    grads: wgpu::Buffer,
    velocity: wgpu::Buffer,
    running: wgpu::Buffer,
    /// One activation and one gradient per value (none for the input's gradient).
    acts: Vec<wgpu::Buffer>,
    labels: wgpu::Buffer,
    losses: wgpu::Buffer,
    sgd_params: wgpu::Buffer,
    dispatches: Vec<Dispatch>,
}

/// Values per image of a shape.
fn len(s: Shape) -> usize {
    s.iter().product()
}

impl Trainer {
    /// Uploads `graph` (weights, running statistics) and records every dispatch of a training
    /// step at batch size `batch`. The graph must be unfused: conv without bias or epilogue,
    /// batch norm, ReLU, residual add, option-A shortcut, max pool, global average pool, and a
    /// fully connected layer last.
    pub async fn new_async(
        ctx: Arc<GpuContext>,
        graph: Graph,
        batch: usize,
        hyper: Hyper,
    ) -> Result<Self> {
        require!(
            batch > 0,
            InvalidInput,
            "training needs a batch of at least one image"
        );
        check_trainable(&graph)?;
        // A pipeline or buffer the GPU refuses is an error here, never a step that runs nothing.
        let scopes = crate::session::PlanScopes::push(&ctx);
        let trainer = Self::build(ctx.clone(), graph, batch, hyper);
        scopes.check(&ctx).await?;
        trainer
    }

    fn build(ctx: Arc<GpuContext>, graph: Graph, batch: usize, hyper: Hyper) -> Result<Self> {
        let params = state_dict::params(&graph);
        let mut offsets = Vec::with_capacity(params.len());
        let mut flat = Vec::new();
        for p in &params {
            offsets.push(flat.len());
            flat.extend_from_slice(state_dict::param_data(&graph, p));
        }
        let param_len = flat.len();
        let mut stats_offsets = vec![None; graph.nodes.len()];
        let mut running = Vec::new();
        for (id, node) in graph.nodes.iter().enumerate() {
            if let Op::BatchNorm(bn) = &node.op {
                stats_offsets[id] = Some(running.len());
                running.extend_from_slice(&bn.mean);
                running.extend_from_slice(&bn.var);
            }
        }
        let stats_len = running.len();
        let weights = storage_init(&ctx, "train.weights", &flat)?;
        let grads = storage_zeroed(&ctx, "train.grads", param_len)?;
        let velocity = storage_zeroed(&ctx, "train.velocity", param_len)?;
        let running_buf = storage_init(&ctx, "train.running", &running)?;
        let saved = storage_zeroed(&ctx, "train.saved", stats_len)?;
        let mut acts = Vec::with_capacity(graph.nodes.len());
        let mut dacts = Vec::with_capacity(graph.nodes.len());
        for (id, node) in graph.nodes.iter().enumerate() {
            let n = batch * len(node.shape);
            acts.push(storage_zeroed(&ctx, &format!("{}.act", node.name), n)?);
            dacts.push(if id == 0 {
                None
            } else {
                Some(storage_zeroed(&ctx, &format!("{}.grad", node.name), n)?)
            });
        }
        let scratch = storage_zeroed(&ctx, "train.scratch", scratch_len(&graph, batch))?;
        let labels = storage_zeroed(&ctx, "train.labels", batch)?;
        // Per image: the loss, then whether it was misclassified.
        let losses = storage_zeroed(&ctx, "train.losses", 2 * batch)?;
        let sgd_params = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("train.sgd"),
            size: std::mem::size_of::<TrainSgdParams>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bufs = Buffers {
            weights: &weights,
            grads: &grads,
            velocity: &velocity,
            running: &running_buf,
            saved: &saved,
            scratch: &scratch,
            labels: &labels,
            losses: &losses,
            sgd: &sgd_params,
            acts: &acts,
            dacts: &dacts,
        };
        let layout = Layout {
            graph: &graph,
            params: &params,
            offsets: &offsets,
            stats_offsets: &stats_offsets,
            batch,
            hyper,
            param_len,
        };
        let dispatches = record(&ctx, &layout, &bufs)?;
        Ok(Self {
            ctx,
            graph,
            params,
            offsets,
            stats_offsets,
            stats_len,
            param_len,
            batch,
            hyper,
            steps: 0,
            weights,
            grads,
            velocity,
            running: running_buf,
            acts,
            labels,
            losses,
            sgd_params,
            dispatches,
        })
    }

    /// The batch size every step takes.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Steps taken so far (batch norm's `num_batches_tracked`).
    pub fn steps(&self) -> i64 {
        self.steps
    }

    /// The hyper-parameters the next step uses.
    pub fn hyper(&self) -> Hyper {
        self.hyper
    }

    /// Changes the learning rate from the next step on (schedules, warm-up).
    pub fn set_lr(&mut self, lr: f32) {
        self.hyper.lr = lr;
    }

    /// Sets the step count (when resuming from a checkpoint).
    pub fn set_steps(&mut self, steps: i64) {
        self.steps = steps;
    }

    /// The trainable tensors, in the order of the gradient and parameter buffers.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// One SGD step on `input` (NCHW, `batch` images) with class `labels`; returns the batch's
    /// mean softmax cross-entropy and error rate in train mode, before the update.
    pub async fn step_async(&mut self, input: &[f32], labels: &[usize]) -> Result<StepStats> {
        self.ctx.check_alive()?;
        let image = len(self.graph.shape(0));
        require!(
            input.len() == self.batch * image,
            InvalidInput,
            "training input has {} values; a batch of {} images of shape {:?} has {}",
            input.len(),
            self.batch,
            self.graph.shape(0),
            self.batch * image
        );
        require!(
            labels.len() == self.batch,
            InvalidInput,
            "{} labels for a batch of {}",
            labels.len(),
            self.batch
        );
        let classes = len(self.graph.shape(self.graph.output));
        if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
            fail!(
                InvalidInput,
                "label {bad} is out of range for a network of {classes} classes"
            );
        }
        let labels_u32: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.acts[0], 0, bytemuck::cast_slice(input));
        queue.write_buffer(&self.labels, 0, bytemuck::cast_slice(&labels_u32));
        let sgd = TrainSgdParams {
            len: u32_of(self.param_len, "parameters")?,
            lr: self.hyper.lr,
            momentum: self.hyper.momentum,
            weight_decay: self.hyper.weight_decay,
        };
        queue.write_buffer(&self.sgd_params, 0, bytemuck::bytes_of(&sgd));
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train step"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("train step"),
                timestamp_writes: None,
            });
            for d in &self.dispatches {
                d.record(&mut pass);
            }
        }
        let staging = self.staging(2 * self.batch);
        encoder.copy_buffer_to_buffer(&self.losses, 0, &staging, 0, 2 * self.batch as u64 * 4);
        queue.submit([encoder.finish()]);
        let read: Vec<f32> = bytemuck::pod_collect_to_vec(&read_buffer(&self.ctx, &staging).await?);
        self.steps += 1;
        let mean =
            |v: &[f32]| (v.iter().map(|&l| l as f64).sum::<f64>() / self.batch as f64) as f32;
        let (losses, wrong) = read.split_at(self.batch);
        Ok(StepStats {
            loss: mean(losses),
            error: mean(wrong),
        })
    }

    /// Times every dispatch of one step on its own (submit, then wait), for profiles: the label,
    /// the kernel family and the seconds, in step order. The step is taken (weights change).
    pub async fn profile_async(
        &mut self,
        input: &[f32],
        labels: &[usize],
    ) -> Result<Vec<(String, &'static str, f64)>> {
        // A full step first writes the inputs and builds every pipeline.
        self.step_async(input, labels).await?;
        let mut out = Vec::with_capacity(self.dispatches.len());
        for d in &self.dispatches {
            let start = web_time::Instant::now();
            let mut encoder =
                self.ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("profile"),
                    });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("profile"),
                    timestamp_writes: None,
                });
                d.record(&mut pass);
            }
            let staging = self.staging(1);
            encoder.copy_buffer_to_buffer(&self.losses, 0, &staging, 0, 4);
            self.ctx.queue.submit([encoder.finish()]);
            read_buffer(&self.ctx, &staging).await?;
            out.push((
                d.label.clone(),
                d.kernel.family(),
                start.elapsed().as_secs_f64(),
            ));
        }
        Ok(out)
    }

    /// The train-mode logits of the last step's forward pass (before its update), NCHW.
    pub async fn logits_async(&self) -> Result<Vec<f32>> {
        let out = self.graph.output;
        self.download(&self.acts[out], 0, self.batch * len(self.graph.shape(out)))
            .await
    }

    /// The momentum of every trainable tensor (for checkpoints).
    pub async fn velocity_async(&self) -> Result<Vec<(String, Tensor)>> {
        let flat = self.download(&self.velocity, 0, self.param_len).await?;
        self.split(&flat)
    }

    /// Restores the momentum of every trainable tensor (from a checkpoint), by name.
    pub fn set_velocity(&self, named: &[(String, Tensor)]) -> Result<()> {
        let mut flat = vec![0.0f32; self.param_len];
        for (p, &at) in self.params.iter().zip(&self.offsets) {
            let (_, t) = named.iter().find(|(n, _)| *n == p.name).ok_or_else(|| {
                Error::InvalidInput(format!("the checkpoint has no momentum for {}", p.name))
            })?;
            require!(
                t.shape == p.shape,
                InvalidInput,
                "the checkpoint's momentum for {} has shape {:?}, not {:?}",
                p.name,
                t.shape,
                p.shape
            );
            flat[at..at + t.data.len()].copy_from_slice(&t.data);
        }
        self.ctx
            .queue
            .write_buffer(&self.velocity, 0, bytemuck::cast_slice(&flat));
        Ok(())
    }

    /// The last step's gradient of every trainable tensor (weight decay not included), with
    /// the tensors' names.
    pub async fn gradients_async(&self) -> Result<Vec<(String, Tensor)>> {
        let flat = self.download(&self.grads, 0, self.param_len).await?;
        self.split(&flat)
    }

    /// The graph with the trained weights and running statistics, ready to save or to build an
    /// inference session from.
    pub async fn graph_async(&self) -> Result<Graph> {
        let flat = self.download(&self.weights, 0, self.param_len).await?;
        let running = self.download(&self.running, 0, self.stats_len).await?;
        let mut g = self.graph.clone();
        for (p, &at) in self.params.iter().zip(&self.offsets) {
            let dst = state_dict::param_data_mut(&mut g, p);
            let n = dst.len();
            dst.copy_from_slice(&flat[at..at + n]);
        }
        for (id, node) in g.nodes.iter_mut().enumerate() {
            if let (Op::BatchNorm(bn), Some(at)) = (&mut node.op, self.stats_offsets[id]) {
                let c = bn.mean.len();
                bn.mean.copy_from_slice(&running[at..at + c]);
                bn.var.copy_from_slice(&running[at + c..at + 2 * c]);
            }
        }
        Ok(g)
    }

    fn split(&self, flat: &[f32]) -> Result<Vec<(String, Tensor)>> {
        self.params
            .iter()
            .zip(&self.offsets)
            .map(|(p, &at)| {
                let n: usize = p.shape.iter().product();
                Ok((
                    p.name.clone(),
                    Tensor::new(p.shape.clone(), flat[at..at + n].to_vec())?,
                ))
            })
            .collect()
    }

    fn staging(&self, floats: usize) -> wgpu::Buffer {
        self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("train.read_back"),
            size: (floats.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    async fn download(
        &self,
        buffer: &wgpu::Buffer,
        offset: usize,
        floats: usize,
    ) -> Result<Vec<f32>> {
        if floats == 0 {
            return Ok(Vec::new());
        }
        let staging = self.staging(floats);
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train read-back"),
            });
        encoder.copy_buffer_to_buffer(buffer, offset as u64 * 4, &staging, 0, floats as u64 * 4);
        self.ctx.queue.submit([encoder.finish()]);
        Ok(bytemuck::pod_collect_to_vec(
            &read_buffer(&self.ctx, &staging).await?,
        ))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Trainer {
    /// [`Trainer::new_async`], blocking.
    pub fn new(ctx: Arc<GpuContext>, graph: Graph, batch: usize, hyper: Hyper) -> Result<Self> {
        pollster::block_on(Self::new_async(ctx, graph, batch, hyper))
    }

    /// [`Trainer::step_async`], blocking.
    pub fn step(&mut self, input: &[f32], labels: &[usize]) -> Result<StepStats> {
        pollster::block_on(self.step_async(input, labels))
    }

    /// [`Trainer::profile_async`], blocking.
    pub fn profile(
        &mut self,
        input: &[f32],
        labels: &[usize],
    ) -> Result<Vec<(String, &'static str, f64)>> {
        pollster::block_on(self.profile_async(input, labels))
    }

    /// [`Trainer::logits_async`], blocking.
    pub fn logits(&self) -> Result<Vec<f32>> {
        pollster::block_on(self.logits_async())
    }

    /// [`Trainer::gradients_async`], blocking.
    pub fn gradients(&self) -> Result<Vec<(String, Tensor)>> {
        pollster::block_on(self.gradients_async())
    }

    /// [`Trainer::velocity_async`], blocking.
    pub fn velocity(&self) -> Result<Vec<(String, Tensor)>> {
        pollster::block_on(self.velocity_async())
    }

    /// [`Trainer::graph_async`], blocking.
    pub fn graph(&self) -> Result<Graph> {
        pollster::block_on(self.graph_async())
    }
}

/// What one step measured, in train mode, before its update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Mean softmax cross-entropy of the batch.
    pub loss: f32,
    /// Fraction of the batch misclassified (ties count as errors).
    pub error: f32,
}

/// Refuses graphs the training kernels do not cover, naming the layer.
fn check_trainable(g: &Graph) -> Result<()> {
    for node in &g.nodes {
        let why = match &node.op {
            Op::Conv(c) if c.bias.is_some() || c.relu || node.inputs.len() > 1 => {
                Some("a convolution with a fused bias, residual or ReLU (train the unfused graph)")
            }
            Op::BatchNorm(bn) if bn.relu => Some("a batch norm with a fused ReLU"),
            Op::Linear(l) if l.bias.is_none() => Some("a fully connected layer without bias"),
            Op::Softmax => Some("a softmax (the loss applies it)"),
            _ => None,
        };
        if let Some(why) = why {
            fail!(Unsupported, "cannot train layer '{}': {why}", node.name);
        }
    }
    require!(
        matches!(g.nodes[g.output].op, Op::Linear(_)),
        Unsupported,
        "training needs a network that ends in its fully connected layer (the logits)"
    );
    Ok(())
}

/// The largest scratch buffer a weight gradient split into chunks needs.
fn scratch_len(g: &Graph, batch: usize) -> usize {
    g.nodes
        .iter()
        .map(|node| match &node.op {
            Op::Conv(c) => {
                let chunks = (batch * node.shape[1] * node.shape[2]).div_ceil(WEIGHT_GRAD_CHUNK);
                if chunks > 1 {
                    chunks * c.weight.data.len()
                } else {
                    0
                }
            }
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

fn storage_init(ctx: &GpuContext, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
    let buffer = storage_zeroed(ctx, label, data.len())?;
    if !data.is_empty() {
        ctx.queue
            .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
    }
    Ok(buffer)
}

/// A storage buffer of `floats` zeros (at least one: WebGPU rejects empty bindings), checked
/// against the adapter's binding limit.
fn storage_zeroed(ctx: &GpuContext, label: &str, floats: usize) -> Result<wgpu::Buffer> {
    let bytes = floats.max(1) as u64 * 4;
    if bytes > ctx.max_binding() {
        return Err(Error::AdapterLimit {
            layer: label.to_string(),
            limit: "max_storage_buffer_binding_size",
            need: bytes,
            allowed: ctx.max_binding(),
            message: format!(
                "training {label}: {bytes} bytes exceed the adapter's storage binding limit of {} bytes (use a smaller batch)",
                ctx.max_binding()
            ),
        });
    }
    Ok(ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    }))
}

/// What the recording reads of the trainer's layout.
struct Layout<'a> {
    graph: &'a Graph,
    params: &'a [Param],
    offsets: &'a [usize],
    stats_offsets: &'a [Option<usize>],
    batch: usize,
    hyper: Hyper,
    param_len: usize,
}

impl Layout<'_> {
    /// The flat offset of node `id`'s param of `kind`.
    fn offset(&self, id: ValueId, kind: ParamKind) -> Result<u32> {
        let i = self
            .params
            .iter()
            .position(|p| p.node == id && p.kind == kind)
            .ok_or_else(|| Error::InvalidGraph(format!("layer {id} has no {kind:?} parameter")))?;
        u32_of(self.offsets[i], "parameter offset")
    }
}

struct Buffers<'a> {
    weights: &'a wgpu::Buffer,
    grads: &'a wgpu::Buffer,
    velocity: &'a wgpu::Buffer,
    running: &'a wgpu::Buffer,
    saved: &'a wgpu::Buffer,
    scratch: &'a wgpu::Buffer,
    labels: &'a wgpu::Buffer,
    losses: &'a wgpu::Buffer,
    sgd: &'a wgpu::Buffer,
    acts: &'a [wgpu::Buffer],
    dacts: &'a [Option<wgpu::Buffer>],
}

impl Buffers<'_> {
    fn grad(&self, id: ValueId) -> &wgpu::Buffer {
        self.dacts[id]
            .as_ref()
            .expect("only the input has no gradient buffer")
    }
}

/// Every dispatch of one step, in order: forward, loss, backward (reverse node order), SGD.
fn record(ctx: &GpuContext, l: &Layout, b: &Buffers) -> Result<Vec<Dispatch>> {
    let g = l.graph;
    let mut out = Vec::new();
    for id in 1..g.nodes.len() {
        forward(ctx, l, b, id, &mut out)?;
    }
    let classes = len(g.shape(g.output));
    let loss = TrainLinearParams {
        batch: u32_of(l.batch, "batch")?,
        out_features: u32_of(classes, "classes")?,
        ..Default::default()
    };
    require!(
        classes <= LOOP_CAP,
        Unsupported,
        "training: {classes} classes exceed the loop cap of {LOOP_CAP}"
    );
    out.push(launch(
        ctx,
        "loss",
        TrainKernel::CrossEntropy,
        &[&b.acts[g.output], b.labels, b.grad(g.output), b.losses],
        &loss,
        workgroups(ctx, "loss", l.batch as u64)?,
    ));
    // The last reader of each value (in forward order) is the first to reach it going backward:
    // it writes the gradient, the others add to it.
    let mut last_reader = vec![None; g.nodes.len()];
    for (id, node) in g.nodes.iter().enumerate() {
        for &input in &node.inputs {
            last_reader[input] = Some(id);
        }
    }
    for id in (1..g.nodes.len()).rev() {
        backward(ctx, l, b, id, &last_reader, &mut out)?;
    }
    let sgd_threads = l.param_len as u64;
    out.push(Dispatch::new(
        ctx,
        "sgd",
        Kernel::Train(TrainKernel::Sgd),
        &[b.grads, b.weights, b.velocity, b.sgd],
        workgroups(ctx, "sgd", sgd_threads)?,
        Cost::default(),
    ));
    Ok(out)
}

/// A dispatch of a training kernel with its params in a uniform buffer bound last.
fn launch<T: bytemuck::Pod>(
    ctx: &GpuContext,
    label: &str,
    kernel: TrainKernel,
    buffers: &[&wgpu::Buffer],
    params: &T,
    groups: [u32; 3],
) -> Dispatch {
    let params = uniform(ctx, label, params);
    let mut all: Vec<&wgpu::Buffer> = buffers.to_vec();
    all.push(&params);
    Dispatch::new(
        ctx,
        label,
        Kernel::Train(kernel),
        &all,
        groups,
        Cost::default(),
    )
}

/// Workgroups covering `threads` invocations.
fn cover(ctx: &GpuContext, label: &str, threads: usize) -> Result<[u32; 3]> {
    workgroups(ctx, label, threads as u64)
}

fn conv_params(g: &Graph, id: ValueId, batch: usize) -> Result<TrainConvParams> {
    let node = &g.nodes[id];
    let Op::Conv(c) = &node.op else {
        unreachable!("conv_params of a conv node")
    };
    let [in_c, in_h, in_w] = g.shape(node.inputs[0]);
    let [out_c, out_h, out_w] = node.shape;
    let [kh, kw] = c.kernel();
    let k_len = in_c * kh * kw;
    require!(
        k_len <= LOOP_CAP && out_c * kh * kw <= LOOP_CAP,
        Unsupported,
        "training layer '{}': its {k_len}-term sums exceed the loop cap of {LOOP_CAP}",
        node.name
    );
    let total = batch * out_h * out_w;
    let chunk = total.min(WEIGHT_GRAD_CHUNK);
    Ok(TrainConvParams {
        batch: u32_of(batch, "batch")?,
        in_c: in_c as u32,
        in_h: in_h as u32,
        in_w: in_w as u32,
        out_c: out_c as u32,
        out_h: out_h as u32,
        out_w: out_w as u32,
        kernel_h: kh as u32,
        kernel_w: kw as u32,
        stride_h: c.stride[0] as u32,
        stride_w: c.stride[1] as u32,
        pad_top: c.pad[0] as u32,
        pad_left: c.pad[1] as u32,
        chunk: chunk as u32,
        chunks: u32_of(total.div_ceil(chunk), "chunks")?,
        ..Default::default()
    })
}

fn bn_params(l: &Layout, id: ValueId) -> Result<TrainBatchNormParams> {
    let g = l.graph;
    let node = &g.nodes[id];
    let Op::BatchNorm(bn) = &node.op else {
        unreachable!("bn_params of a batch-norm node")
    };
    let [c, h, w] = node.shape;
    let m = l.batch * h * w;
    require!(
        m.div_ceil(WORKGROUP as usize) <= LOOP_CAP,
        Unsupported,
        "training layer '{}': batch statistics over {m} values exceed the loop cap (use a smaller batch)",
        node.name
    );
    Ok(TrainBatchNormParams {
        batch: u32_of(l.batch, "batch")?,
        channels: c as u32,
        spatial: u32_of(h * w, "map size")?,
        gamma_offset: l.offset(id, ParamKind::BnGamma)?,
        beta_offset: l.offset(id, ParamKind::BnBeta)?,
        stats_offset: u32_of(
            l.stats_offsets[id].expect("a batch norm has statistics"),
            "statistics",
        )?,
        momentum: l.hyper.bn_momentum,
        eps: bn.eps,
        flags: 0,
        _pad: [0; 3],
    })
}

fn pool_params(g: &Graph, id: ValueId, batch: usize) -> Result<TrainPoolParams> {
    let node = &g.nodes[id];
    let [in_c, in_h, in_w] = g.shape(node.inputs[0]);
    let [out_c, out_h, out_w] = node.shape;
    let mut p = TrainPoolParams {
        batch: u32_of(batch, "batch")?,
        in_c: in_c as u32,
        in_h: in_h as u32,
        in_w: in_w as u32,
        out_c: out_c as u32,
        out_h: out_h as u32,
        out_w: out_w as u32,
        ..Default::default()
    };
    match &node.op {
        Op::MaxPool(m) => {
            p.kernel_h = m.kernel[0] as u32;
            p.kernel_w = m.kernel[1] as u32;
            p.stride_h = m.stride[0] as u32;
            p.stride_w = m.stride[1] as u32;
            p.pad_top = m.pad[0] as u32;
            p.pad_left = m.pad[1] as u32;
        }
        Op::ShortcutA { stride, pad_before } => {
            p.stride_h = *stride as u32;
            p.stride_w = *stride as u32;
            p.pad_before = *pad_before as u32;
        }
        Op::GlobalAvgPool => require!(
            in_h * in_w <= LOOP_CAP,
            Unsupported,
            "training layer '{}': a {in_h}x{in_w} map exceeds the loop cap of the average pool",
            node.name
        ),
        _ => {}
    }
    Ok(p)
}

fn linear_params(l: &Layout, id: ValueId) -> Result<TrainLinearParams> {
    let g = l.graph;
    let node = &g.nodes[id];
    let in_features = len(g.shape(node.inputs[0]));
    let out_features = len(node.shape);
    require!(
        in_features <= LOOP_CAP && out_features <= LOOP_CAP && l.batch <= LOOP_CAP,
        Unsupported,
        "training layer '{}': {in_features} inputs or {out_features} outputs exceed the loop cap",
        node.name
    );
    Ok(TrainLinearParams {
        batch: u32_of(l.batch, "batch")?,
        in_features: in_features as u32,
        out_features: out_features as u32,
        weight_offset: l.offset(id, ParamKind::LinearWeight)?,
        bias_offset: l.offset(id, ParamKind::LinearBias)?,
        flags: 0,
        _pad: [0; 2],
    })
}

fn forward(
    ctx: &GpuContext,
    l: &Layout,
    b: &Buffers,
    id: ValueId,
    out: &mut Vec<Dispatch>,
) -> Result<()> {
    let g = l.graph;
    let node = &g.nodes[id];
    let name = &node.name;
    let x = &b.acts[node.inputs[0]];
    let y = &b.acts[id];
    let values = l.batch * len(node.shape);
    match &node.op {
        Op::Input => {}
        Op::Conv(_) => {
            let mut p = conv_params(g, id, l.batch)?;
            p.weight_offset = l.offset(id, ParamKind::ConvWeight)?;
            let threads =
                l.batch * node.shape[0].div_ceil(4) * (node.shape[1] * node.shape[2]).div_ceil(4);
            out.push(launch(
                ctx,
                name,
                TrainKernel::Conv,
                &[x, b.weights, y],
                &p,
                cover(ctx, name, threads)?,
            ));
        }
        Op::BatchNorm(_) => {
            let p = bn_params(l, id)?;
            let stats = format!("{name}.stats");
            out.push(launch(
                ctx,
                &stats,
                TrainKernel::BatchNormStats,
                &[x, b.saved, b.running],
                &p,
                [p.channels, 1, 1],
            ));
            out.push(launch(
                ctx,
                name,
                TrainKernel::BatchNorm,
                &[x, b.weights, b.saved, y],
                &p,
                cover(ctx, name, values)?,
            ));
        }
        Op::Relu | Op::Add { .. } => {
            let (second, flags) = match node.op {
                Op::Add { relu } => (&b.acts[node.inputs[1]], ADD | if relu { RELU } else { 0 }),
                _ => (x, RELU),
            };
            let p = TrainPointwiseParams {
                len: u32_of(values, "values")?,
                flags,
                _pad: [0; 2],
            };
            out.push(launch(
                ctx,
                name,
                TrainKernel::Relu,
                &[x, second, y],
                &p,
                cover(ctx, name, values)?,
            ));
        }
        Op::MaxPool(_) | Op::GlobalAvgPool | Op::ShortcutA { .. } => {
            let p = pool_params(g, id, l.batch)?;
            let kernel = match node.op {
                Op::MaxPool(_) => TrainKernel::MaxPool,
                Op::GlobalAvgPool => TrainKernel::AvgPool,
                _ => TrainKernel::ShortcutA,
            };
            out.push(launch(
                ctx,
                name,
                kernel,
                &[x, y],
                &p,
                cover(ctx, name, values)?,
            ));
        }
        Op::Linear(_) => {
            let p = linear_params(l, id)?;
            out.push(launch(
                ctx,
                name,
                TrainKernel::Linear,
                &[x, b.weights, y],
                &p,
                cover(ctx, name, values)?,
            ));
        }
        Op::Softmax => unreachable!("check_trainable refuses softmax"),
    }
    Ok(())
}

fn backward(
    ctx: &GpuContext,
    l: &Layout,
    b: &Buffers,
    id: ValueId,
    last_reader: &[Option<ValueId>],
    out: &mut Vec<Dispatch>,
) -> Result<()> {
    let g = l.graph;
    let node = &g.nodes[id];
    let name = format!("{}.backward", node.name);
    let name = name.as_str();
    let dy = b.grad(id);
    let y = &b.acts[id];
    let input = node.inputs[0];
    let x = &b.acts[input];
    // Flags for writing the gradient of `v`: overwrite if this node is its last reader.
    let acc = |v: ValueId| {
        if last_reader[v] == Some(id) {
            0
        } else {
            ACCUMULATE
        }
    };
    let in_values = l.batch * len(g.shape(input));
    match &node.op {
        Op::Input => {}
        Op::Conv(c) => {
            let mut p = conv_params(g, id, l.batch)?;
            p.weight_offset = l.offset(id, ParamKind::ConvWeight)?;
            p.grad_offset = p.weight_offset;
            let [kh, kw] = c.kernel();
            let k_blocks = c.in_channels().div_ceil(4) * kh * kw;
            let threads = p.chunks as usize * node.shape[0].div_ceil(4) * k_blocks;
            let target = if p.chunks > 1 { b.scratch } else { b.grads };
            let dw = format!("{name}.weight");
            out.push(launch(
                ctx,
                &dw,
                TrainKernel::ConvBackwardWeight,
                &[dy, x, target],
                &p,
                cover(ctx, &dw, threads)?,
            ));
            if p.chunks > 1 {
                let sum = SumChunksParams {
                    len: u32_of(c.weight.data.len(), "weights")?,
                    chunks: p.chunks,
                    offset: p.grad_offset,
                    _pad: 0,
                };
                let label = format!("{name}.weight_sum");
                out.push(launch(
                    ctx,
                    &label,
                    TrainKernel::SumChunks,
                    &[b.scratch, b.grads],
                    &sum,
                    cover(ctx, &label, c.weight.data.len())?,
                ));
            }
            if input != 0 {
                p.flags = acc(input);
                let [in_c, in_h, in_w] = g.shape(input);
                let threads = l.batch * in_c.div_ceil(4) * (in_h * in_w).div_ceil(4);
                out.push(launch(
                    ctx,
                    name,
                    TrainKernel::ConvBackwardInput,
                    &[dy, b.weights, b.grad(input)],
                    &p,
                    cover(ctx, name, threads)?,
                ));
            }
        }
        Op::BatchNorm(_) => {
            let mut p = bn_params(l, id)?;
            let reduce = format!("{name}.reduce");
            out.push(launch(
                ctx,
                &reduce,
                TrainKernel::BatchNormBackwardReduce,
                &[dy, x, b.saved, b.grads],
                &p,
                [p.channels, 1, 1],
            ));
            if input != 0 {
                p.flags = acc(input);
                out.push(launch(
                    ctx,
                    name,
                    TrainKernel::BatchNormBackward,
                    &[dy, x, b.weights, b.saved, b.grads, b.grad(input)],
                    &p,
                    cover(ctx, name, in_values)?,
                ));
            }
        }
        Op::Relu | Op::Add { .. } => {
            let mask = match node.op {
                Op::Add { relu: false } => 0,
                _ => MASK,
            };
            for (k, &v) in node.inputs.iter().enumerate() {
                if v == 0 {
                    continue;
                }
                let p = TrainPointwiseParams {
                    len: u32_of(in_values, "values")?,
                    flags: mask | acc(v),
                    _pad: [0; 2],
                };
                let label = format!("{name}.{k}");
                out.push(launch(
                    ctx,
                    &label,
                    TrainKernel::ReluBackward,
                    &[dy, y, b.grad(v)],
                    &p,
                    cover(ctx, &label, in_values)?,
                ));
            }
        }
        Op::MaxPool(_) | Op::GlobalAvgPool | Op::ShortcutA { .. } => {
            if input == 0 {
                return Ok(());
            }
            let mut p = pool_params(g, id, l.batch)?;
            p.flags = acc(input);
            let grad_in = b.grad(input);
            let d = match node.op {
                Op::MaxPool(_) => launch(
                    ctx,
                    name,
                    TrainKernel::MaxPoolBackward,
                    &[dy, x, grad_in],
                    &p,
                    cover(ctx, name, in_values)?,
                ),
                Op::GlobalAvgPool => launch(
                    ctx,
                    name,
                    TrainKernel::AvgPoolBackward,
                    &[dy, grad_in],
                    &p,
                    cover(ctx, name, in_values)?,
                ),
                _ => launch(
                    ctx,
                    name,
                    TrainKernel::ShortcutABackward,
                    &[dy, grad_in],
                    &p,
                    cover(ctx, name, in_values)?,
                ),
            };
            out.push(d);
        }
        Op::Linear(_) => {
            let mut p = linear_params(l, id)?;
            let dw = format!("{name}.weight");
            let threads = p.out_features as usize * (p.in_features as usize + 1);
            out.push(launch(
                ctx,
                &dw,
                TrainKernel::LinearBackwardWeight,
                &[dy, x, b.grads],
                &p,
                cover(ctx, &dw, threads)?,
            ));
            if input != 0 {
                p.flags = acc(input);
                out.push(launch(
                    ctx,
                    name,
                    TrainKernel::LinearBackwardInput,
                    &[dy, b.weights, b.grad(input)],
                    &p,
                    cover(ctx, name, in_values)?,
                ));
            }
        }
        Op::Softmax => unreachable!("check_trainable refuses softmax"),
    }
    Ok(())
}
