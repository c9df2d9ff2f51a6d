//! Lowering: a graph becomes a [`Plan`], the list of GPU steps a session records. This is the
//! one place where kernels are chosen ([`conv`] for convolutions, [`lower`] for the rest), where
//! the batch is fitted to the adapter, and where every step's temporaries, loop trips and
//! multiply-accumulates are known. The memory planner (`graph::memory`) and the dispatch builder
//! (`ops::build`) both read the plan and decide nothing.

pub mod conv;
mod options;

pub use options::{SessionOptions, Tune};

use crate::error::{Error, Result, fail, require};
use crate::gpu::GpuContext;
use crate::graph::fuse::optimize;
use crate::graph::memory::{MemoryPlan, plan_memory};
use crate::graph::space_to_depth::{SpaceToDepth, fold_stem};
use crate::graph::{Graph, Node, Op, Shape, ValueId};
use crate::kernels::Kernel;
use crate::layout::{blocked_len, blocks};
use crate::precision::Precision;
use conv::{ConvAlgo, ConvPolicy, ConvShape};

/// Loop iterations one invocation of any kernel may run, all its loops together. Mesa's llvmpipe
/// (Vulkan and GL) stops a shader's loops after 65,535 iterations in all, without an error (a
/// global average pool over a 1100x1100 map returned 65535/1210000 of the mean); every kernel
/// splits its work so that no invocation comes near that, with a margin.
pub const LOOP_BUDGET: u64 = 60_000;

/// Positions of a global average pool that one invocation sums; more are split into chunks.
pub const POOL_CHUNK: usize = 16_384;

/// vec4s of a fully connected dot product that one invocation sums; more are split into chunks.
pub const LINEAR_CHUNK4: usize = 16_384;

/// How one graph node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    /// A convolution, by the algorithm `conv` chose.
    Conv(ConvAlgo),
    /// A fully connected layer: one dispatch, or `chunks` partial dot products added up by the
    /// split reduce.
    Linear {
        /// Chunks each dot product is split into (1: not split).
        chunks: u32,
    },
    /// A global average pool: one dispatch, or `chunks` partial means added up by the split
    /// reduce.
    GlobalAvgPool {
        /// Chunks each plane is split into (1: not split).
        chunks: u32,
    },
    /// Standalone batch norm.
    BatchNorm,
    /// Standalone ReLU.
    Relu,
    /// Max pool.
    MaxPool,
    /// The option-A shortcut.
    ShortcutA,
    /// Standalone residual add.
    Add,
    /// Softmax over each image.
    Softmax,
}

/// One node of the optimized graph as the GPU runs it.
#[derive(Clone, Debug)]
pub struct Step {
    /// The graph node (and value) it computes.
    pub node: ValueId,
    /// The node's name, for profiles and errors.
    pub label: String,
    /// How it runs.
    pub algo: Algo,
    /// Bytes of each temporary the step needs while it runs (Winograd's transforms, split
    /// partial sums); the memory plan gives them slots.
    pub scratch: Vec<u64>,
    /// Multiply-accumulates for the whole batch.
    pub macs: u64,
    /// A convolution's shape (what the tuner measures and caches by).
    pub conv: Option<ConvShape>,
}

impl Step {
    /// The kernels the step dispatches, in order.
    pub fn kernels(&self, precision: Precision) -> Vec<Kernel> {
        match self.algo {
            Algo::Conv(ConvAlgo::Reference) => vec![Kernel::ConvReference],
            Algo::Conv(ConvAlgo::Direct(t)) => vec![Kernel::ConvDirect(t, precision)],
            Algo::Conv(ConvAlgo::SplitK { tile, .. }) => {
                vec![Kernel::ConvDirect(tile, precision), Kernel::SplitReduce]
            }
            Algo::Conv(ConvAlgo::Tiled { tile, splits }) => {
                if splits > 1 {
                    vec![Kernel::ConvTiled(tile), Kernel::SplitReduce]
                } else {
                    vec![Kernel::ConvTiled(tile)]
                }
            }
            Algo::Conv(ConvAlgo::Winograd(t)) => vec![
                Kernel::WinogradInput,
                Kernel::ConvDirect(t, precision),
                Kernel::WinogradOutput,
            ],
            Algo::Linear { chunks } | Algo::GlobalAvgPool { chunks } => {
                let first = if matches!(self.algo, Algo::Linear { .. }) {
                    Kernel::Linear
                } else {
                    Kernel::GlobalAvgPool
                };
                if chunks > 1 {
                    vec![first, Kernel::SplitReduce]
                } else {
                    vec![first]
                }
            }
            Algo::BatchNorm => vec![Kernel::BatchNorm],
            Algo::Relu => vec![Kernel::Relu],
            Algo::MaxPool => vec![Kernel::MaxPool],
            Algo::ShortcutA => vec![Kernel::ShortcutA],
            Algo::Add => vec![Kernel::Add],
            Algo::Softmax => vec![Kernel::Softmax],
        }
    }
}

/// A network lowered onto one adapter.
pub struct Plan {
    /// The optimized graph, weights included (the session uploads them and lets them go).
    pub graph: Graph,
    /// Images per forward pass (may be smaller than requested, to fit the adapter's limits).
    pub batch: usize,
    /// What the convolutions compute in.
    pub precision: Precision,
    /// The stem's space-to-depth fold, applied to the input on upload.
    pub stem_fold: Option<SpaceToDepth>,
    /// One step per node after the input, in order.
    pub steps: Vec<Step>,
    /// Values read back after each run: the output first, then the taps.
    pub readbacks: Vec<(String, ValueId)>,
    /// Activation and temporary buffers by liveness.
    pub memory: MemoryPlan,
}

/// Lowers `graph` for `ctx` with `opts`: graph passes (batch norm folded, epilogues fused, stem
/// folded), the batch fitted to the adapter, a kernel chosen for every node, memory planned.
pub fn lower(ctx: &GpuContext, graph: Graph, opts: &SessionOptions) -> Result<Plan> {
    require!(
        opts.batch >= 1,
        InvalidInput,
        "batch size must be at least 1"
    );
    ctx.check_alive()?;
    conv::check_precision(ctx, opts.conv, opts.precision)?;
    graph.validate()?;
    let mut graph = if opts.optimize {
        optimize(graph)
    } else {
        graph
    };
    // The fold turns the stem into a conv the tuned kernels run well; the reference kernel is
    // the yardstick and runs the graph as written.
    let stem_fold = if opts.optimize && opts.conv != ConvPolicy::Reference {
        fold_stem(&mut graph)
    } else {
        None
    };
    let batch = fit_batch(ctx, &graph, opts.batch)?;
    let mut readbacks = vec![("output".to_string(), graph.output)];
    for name in &opts.taps {
        let Some(&v) = graph.taps.get(name) else {
            fail!(InvalidInput, "the network has no tap named '{name}'");
        };
        readbacks.push((name.clone(), v));
    }
    let steps: Vec<Step> = (1..graph.nodes.len())
        .map(|i| lower_node(ctx, &graph, i, batch, opts))
        .collect::<Result<_>>()?;
    let memory = memory_of(&graph, batch, &steps, &readbacks);
    Ok(Plan {
        graph,
        batch,
        precision: opts.precision,
        stem_fold,
        steps,
        readbacks,
        memory,
    })
}

/// The memory plan of `steps`: activations by liveness, each step's temporaries, the read-back
/// values pinned.
fn memory_of(
    graph: &Graph,
    batch: usize,
    steps: &[Step],
    readbacks: &[(String, ValueId)],
) -> MemoryPlan {
    let mut temps = vec![Vec::new(); graph.nodes.len()];
    for s in steps {
        temps[s.node] = s.scratch.clone();
    }
    let pinned: Vec<ValueId> = readbacks.iter().map(|&(_, v)| v).collect();
    plan_memory(graph, batch, &pinned, &temps)
}

impl Plan {
    /// Runs the convolution of step `i` with `algo` instead (the tuner's choice): its
    /// temporaries follow, and the memory plan is redone. `algo` must be one of
    /// `conv::candidates` for the step's shape.
    pub fn set_conv_algo(&mut self, i: usize, algo: ConvAlgo) -> Result<()> {
        let step = &mut self.steps[i];
        let Some(shape) = step.conv else {
            fail!(InvalidGraph, "step '{}' is not a convolution", step.label);
        };
        step.algo = Algo::Conv(algo);
        step.scratch = conv::scratch_bytes(&algo, &shape);
        self.memory = memory_of(&self.graph, self.batch, &self.steps, &self.readbacks);
        Ok(())
    }
}

/// The step of node `i`.
fn lower_node(
    ctx: &GpuContext,
    graph: &Graph,
    i: ValueId,
    batch: usize,
    opts: &SessionOptions,
) -> Result<Step> {
    let node = &graph.nodes[i];
    let in_shapes: Vec<Shape> = node.inputs.iter().map(|&v| graph.shape(v)).collect();
    let name = &node.name;
    let too_long = |what: &str, trips: u64| {
        Error::Unsupported(format!(
            "layer '{name}': {what} would loop {trips} times in one GPU invocation, more than the {LOOP_BUDGET} some drivers run (Mesa's llvmpipe stops at 65,535 silently)"
        ))
    };
    let bytes = |s: Shape| (batch * blocked_len(s)) as u64 * 4;
    let mut conv_shape = None;
    let (algo, scratch, macs) = match &node.op {
        Op::Conv(c) => {
            let s = ConvShape::of(c, in_shapes[0], node.shape, batch);
            let algo = conv::choose(ctx, name, &s, opts.conv, opts.precision)?;
            conv_shape = Some(s);
            (Algo::Conv(algo), conv::scratch_bytes(&algo, &s), s.macs())
        }
        Op::Linear(l) => {
            let len4 = blocked_len(in_shapes[0]) / 4;
            let chunks = len4.div_ceil(LINEAR_CHUNK4).max(1);
            let out_len = node.shape[0].div_ceil(4) * 4;
            if chunks as u64 > LOOP_BUDGET {
                return Err(too_long(
                    "the fully connected layer's reduce",
                    chunks as u64,
                ));
            }
            let scratch = if chunks > 1 {
                vec![(chunks * batch * out_len) as u64 * 4]
            } else {
                Vec::new()
            };
            let macs = (batch * l.weight.numel()) as u64;
            (
                Algo::Linear {
                    chunks: chunks as u32,
                },
                scratch,
                macs,
            )
        }
        Op::GlobalAvgPool => {
            let [_, h, w] = in_shapes[0];
            let chunks = (h * w).div_ceil(POOL_CHUNK).max(1);
            if chunks as u64 > LOOP_BUDGET {
                return Err(too_long("the global average pool's reduce", chunks as u64));
            }
            let scratch = if chunks > 1 {
                vec![chunks as u64 * bytes(node.shape)]
            } else {
                Vec::new()
            };
            (
                Algo::GlobalAvgPool {
                    chunks: chunks as u32,
                },
                scratch,
                0,
            )
        }
        Op::MaxPool(p) => {
            let trips = (p.kernel[0] * p.kernel[1] + p.kernel[0]) as u64;
            if trips > LOOP_BUDGET {
                return Err(too_long("the max pool window", trips));
            }
            (Algo::MaxPool, Vec::new(), 0)
        }
        Op::Softmax => {
            let trips = 3 * (blocks(node.shape) * 4 * node.shape[1] * node.shape[2]) as u64;
            if trips > LOOP_BUDGET {
                return Err(too_long("the softmax", trips));
            }
            (Algo::Softmax, Vec::new(), 0)
        }
        Op::BatchNorm(_) => (Algo::BatchNorm, Vec::new(), 0),
        Op::Relu => (Algo::Relu, Vec::new(), 0),
        Op::ShortcutA { .. } => (Algo::ShortcutA, Vec::new(), 0),
        Op::Add { .. } => (Algo::Add, Vec::new(), 0),
        Op::Input => fail!(InvalidGraph, "node {i} ('{name}') is a second input"),
    };
    for &need in &scratch {
        if need > ctx.max_binding() {
            return Err(Error::AdapterLimit {
                layer: name.clone(),
                limit: "max_storage_buffer_binding_size",
                need,
                allowed: ctx.max_binding(),
                message: format!(
                    "layer '{name}' needs a {need}-byte temporary but adapter '{}' allows {} bytes per storage binding (max_storage_buffer_binding_size); use a smaller input or batch",
                    ctx.info.name,
                    ctx.max_binding()
                ),
            });
        }
    }
    Ok(Step {
        node: i,
        label: name.clone(),
        algo,
        scratch,
        macs,
        conv: conv_shape,
    })
}

/// The largest batch (up to `wanted`) whose every activation fits one storage binding.
fn fit_batch(ctx: &GpuContext, graph: &Graph, wanted: usize) -> Result<usize> {
    // In the blocked layout (channels padded to 4), in u64: on wasm32 `usize` is 32 bits and a
    // huge input must be refused, not wrap around.
    let bytes = |n: &Node| {
        [n.shape[0].div_ceil(4) * 4, n.shape[1], n.shape[2]]
            .iter()
            .fold(4u64, |b, &d| b.saturating_mul(d as u64))
    };
    // The first of the largest: the layer where the trouble starts.
    let Some(largest) = graph.nodes.iter().rev().max_by_key(|n| bytes(n)) else {
        fail!(InvalidGraph, "the graph is empty");
    };
    let (name, need) = (&largest.name, bytes(largest));
    let limit = ctx.max_binding();
    let fits = (limit / need.max(4)) as usize;
    if fits == 0 {
        return Err(Error::AdapterLimit {
            layer: name.clone(),
            limit: "max_storage_buffer_binding_size",
            need,
            allowed: limit,
            message: format!(
                "layer '{name}' needs {need} bytes for one image's {:?} output but adapter '{}' allows {limit} bytes per storage binding (max_storage_buffer_binding_size); use a smaller input",
                largest.shape, ctx.info.name
            ),
        });
    }
    if fits < wanted {
        log::warn!(
            "batch {wanted} does not fit adapter '{}' (layer '{name}' needs {need} bytes per image, {limit} bytes per binding): running in chunks of {fits}",
            ctx.info.name
        );
    }
    Ok(wanted.min(fits))
}
