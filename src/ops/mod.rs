//! The host side of each kernel family: packs weights, fills the kernel's params struct and turns
//! one step of the plan into its dispatches. Nothing here chooses a kernel: the plan's step says
//! which (see `plan`). Shapes travel in uniforms, so one pipeline serves every layer. Every
//! kernel reads and writes activations in the channel-blocked layout of `layout`.

mod batchnorm;
pub mod conv;
mod elementwise;
mod linear;
mod pool;
mod reduce;
mod residual;

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, GpuContext};
use crate::graph::{Node, Op, Shape};
use crate::layout::blocked_len;
use crate::plan::{Algo, Step};
use crate::precision::Precision;

/// What a step's dispatches read and write.
pub struct Io<'a> {
    pub inputs: Vec<&'a wgpu::Buffer>,
    pub in_shapes: Vec<Shape>,
    pub output: &'a wgpu::Buffer,
    pub batch: usize,
    /// The step's temporaries, as the plan sized them (`Step::scratch`).
    pub scratch: Vec<&'a wgpu::Buffer>,
}

/// The dispatches of one step (one, or several for multi-step algorithms). `precision` applies
/// to the tuned convolutions; every other kernel is f32.
pub fn build(
    ctx: &GpuContext,
    node: &Node,
    step: &Step,
    io: &Io,
    precision: Precision,
) -> Result<Vec<Dispatch>> {
    let name = node.name.as_str();
    let shape = node.shape;
    batch_len(io.batch, shape)?;
    for &s in &io.in_shapes {
        batch_len(io.batch, s)?;
    }
    let one = |d: Result<Dispatch>| d.map(|d| vec![d]);
    match (&node.op, step.algo) {
        (Op::Conv(c), Algo::Conv(algo)) => conv::build(ctx, name, c, shape, io, algo, precision),
        (Op::Linear(l), Algo::Linear { chunks }) => linear::build(ctx, name, l, io, chunks),
        (Op::GlobalAvgPool, Algo::GlobalAvgPool { chunks }) => {
            pool::build_global_avg(ctx, name, io, chunks)
        }
        (Op::BatchNorm(bn), Algo::BatchNorm) => one(batchnorm::build(ctx, name, bn, shape, io)),
        (Op::Relu, Algo::Relu) => one(elementwise::build_relu(ctx, name, shape, io)),
        (Op::Softmax, Algo::Softmax) => one(elementwise::build_softmax(ctx, name, shape, io)),
        (Op::MaxPool(p), Algo::MaxPool) => one(pool::build_max(ctx, name, p, shape, io)),
        (Op::ShortcutA { stride, pad_before }, Algo::ShortcutA) => one(residual::build_shortcut_a(
            ctx,
            name,
            *stride,
            *pad_before,
            shape,
            io,
        )),
        (Op::Add { relu }, Algo::Add) => one(residual::build_add(ctx, name, *relu, shape, io)),
        (op, algo) => Err(Error::InvalidGraph(format!(
            "layer '{name}': the plan's {algo:?} does not run a {} node",
            op.kind()
        ))),
    }
}

/// Checks that a shape field really fits the kernels' 32-bit fields.
pub fn u32_of(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::Unsupported(format!(
            "{what} = {v} does not fit the kernels' 32-bit indices"
        ))
    })
}

/// Floats of a batch of activations of per-image shape `s` (channel-blocked, so channels rounded
/// up to 4), checked against 32-bit indexing.
pub fn batch_len(batch: usize, s: Shape) -> Result<u32> {
    u32_of(batch * blocked_len(s), "activation length")
}
