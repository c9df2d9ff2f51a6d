//! Graph IR: every node produces one activation of shape (C, H, W) per image.

use crate::error::{Error, Result, fail, require};
use crate::tensor::Tensor;
use std::collections::BTreeMap;

/// Index of a node, and so of the value (activation) it produces.
pub type ValueId = usize;

pub use crate::tensor::Shape;

/// 2-D convolution (groups = 1) with its fused epilogue: + bias, + residual (the node's second
/// input, if any), then ReLU.
#[derive(Clone, Debug)]
pub struct Conv {
    /// [out_c, in_c, kernel_h, kernel_w]
    pub weight: Tensor,
    /// One per output channel (none: zero).
    pub bias: Option<Vec<f32>>,
    /// Stride in y and x.
    pub stride: [usize; 2],
    /// top, left, bottom, right
    pub pad: [usize; 4],
    /// ReLU last in the epilogue.
    pub relu: bool,
}

impl Conv {
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.shape[0]
    }
    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.shape[1]
    }
    /// Kernel height and width.
    pub fn kernel(&self) -> [usize; 2] {
        [self.weight.shape[2], self.weight.shape[3]]
    }
}

/// Inference batch norm with its running statistics: y = (x - mean) / sqrt(var + eps) * gamma + beta.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    /// Scale, one per channel.
    pub gamma: Vec<f32>,
    /// Shift, one per channel.
    pub beta: Vec<f32>,
    /// Running mean.
    pub mean: Vec<f32>,
    /// Running variance.
    pub var: Vec<f32>,
    /// Added to the variance before the square root.
    pub eps: f32,
    /// A ReLU fused after the normalisation.
    pub relu: bool,
}

impl BatchNorm {
    /// The per-channel affine form: y = x * scale + shift.
    pub fn scale_shift(&self) -> (Vec<f32>, Vec<f32>) {
        let scale: Vec<f32> = (0..self.gamma.len())
            .map(|c| (self.gamma[c] as f64 / (self.var[c] as f64 + self.eps as f64).sqrt()) as f32)
            .collect();
        let shift = (0..self.gamma.len())
            .map(|c| (self.beta[c] as f64 - self.mean[c] as f64 * scale[c] as f64) as f32)
            .collect();
        (scale, shift)
    }
}

/// Max pooling; padding never wins (it counts as -infinity, as in PyTorch and ONNX).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaxPool {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Stride in y and x.
    pub stride: [usize; 2],
    /// top, left, bottom, right
    pub pad: [usize; 4],
}

/// Fully connected layer on the flattened (C*H*W) activation; output shape (out, 1, 1).
#[derive(Clone, Debug)]
pub struct Linear {
    /// [out, in]
    pub weight: Tensor,
    /// One per output (none: zero).
    pub bias: Option<Vec<f32>>,
}

/// What a node computes.
#[derive(Clone, Debug)]
pub enum Op {
    /// The network's input (node 0, and only node 0).
    Input,
    /// 2-D convolution with its fused epilogue.
    Conv(Conv),
    /// Inference batch norm (where it was not folded into a conv).
    BatchNorm(BatchNorm),
    /// max(x, 0), NaN kept.
    Relu,
    /// Max pooling.
    MaxPool(MaxPool),
    /// The mean of each channel over the map: (C, 1, 1).
    GlobalAvgPool,
    /// The paper's option-A shortcut: take every `stride`-th pixel and zero-pad channels,
    /// `pad_before` zero channels first, the rest after, up to the node's channel count.
    ShortcutA {
        /// Subsampling in y and x.
        stride: usize,
        /// Zero channels before the input's.
        pad_before: usize,
    },
    /// Elementwise sum of the two inputs, optionally followed by ReLU.
    Add {
        /// ReLU after the sum.
        relu: bool,
    },
    /// Fully connected layer.
    Linear(Linear),
    /// Softmax over the flattened activation of each image.
    Softmax,
}

impl Op {
    /// The op's name in messages ("conv", "batchnorm", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv(_) => "conv",
            Op::BatchNorm(_) => "batchnorm",
            Op::Relu => "relu",
            Op::MaxPool(_) => "maxpool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::ShortcutA { .. } => "shortcut_a",
            Op::Add { .. } => "add",
            Op::Linear(_) => "linear",
            Op::Softmax => "softmax",
        }
    }
}

/// One op of the network and the value it produces.
#[derive(Clone, Debug)]
pub struct Node {
    /// The layer's name (torchvision's, or the ONNX node's).
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// The values it reads (a residual conv's second input is the residual).
    pub inputs: Vec<ValueId>,
    /// Per-image shape of its output.
    pub shape: Shape,
}

/// A network: node 0 is the input; nodes are in execution (topological) order.
#[derive(Clone, Debug)]
pub struct Graph {
    /// Every node, the input first, in an order where each reads only earlier ones.
    pub nodes: Vec<Node>,
    /// The value the network returns.
    pub output: ValueId,
    /// Named intermediate values (e.g. "stem", "layer1") that tests can read back.
    pub taps: BTreeMap<String, ValueId>,
}

fn out_size(
    input: usize,
    kernel: usize,
    stride: usize,
    pad_lo: usize,
    pad_hi: usize,
) -> Result<usize> {
    require!(stride > 0, InvalidGraph, "stride must be positive");
    let padded = input + pad_lo + pad_hi;
    require!(
        padded >= kernel,
        InvalidGraph,
        "kernel {kernel} is larger than the padded input {padded}"
    );
    Ok((padded - kernel) / stride + 1)
}

impl Graph {
    /// A graph holding just its input, of per-image shape (C, H, W).
    pub fn new(input: Shape) -> Self {
        Self {
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: vec![],
                shape: input,
            }],
            output: 0,
            taps: BTreeMap::new(),
        }
    }

    /// Per-image input shape.
    pub fn input_shape(&self) -> Shape {
        self.nodes[0].shape
    }

    /// Per-image output shape.
    pub fn output_shape(&self) -> Shape {
        self.nodes[self.output].shape
    }

    /// Per-image shape of value `v`.
    pub fn shape(&self, v: ValueId) -> Shape {
        self.nodes[v].shape
    }

    fn push(&mut self, name: &str, op: Op, inputs: Vec<ValueId>, shape: Shape) -> ValueId {
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs,
            shape,
        });
        self.output = self.nodes.len() - 1;
        self.output
    }

    /// Appends a convolution of `x`; checks the weights against `x`'s channels.
    pub fn conv(&mut self, name: &str, x: ValueId, conv: Conv) -> Result<ValueId> {
        let [c, h, w] = self.shape(x);
        require!(
            conv.weight.shape.len() == 4,
            InvalidGraph,
            "{name}: conv weight must be 4-D, got {:?}",
            conv.weight.shape
        );
        require!(
            conv.in_channels() == c,
            InvalidGraph,
            "{name}: conv expects {} input channels but its input has {c}",
            conv.in_channels()
        );
        if let Some(b) = &conv.bias {
            require!(
                b.len() == conv.out_channels(),
                InvalidGraph,
                "{name}: bias length {} != {} output channels",
                b.len(),
                conv.out_channels()
            );
        }
        let [kh, kw] = conv.kernel();
        let oh = out_size(h, kh, conv.stride[0], conv.pad[0], conv.pad[2])
            .map_err(|e| Error::InvalidGraph(format!("{name}: {e}")))?;
        let ow = out_size(w, kw, conv.stride[1], conv.pad[1], conv.pad[3])
            .map_err(|e| Error::InvalidGraph(format!("{name}: {e}")))?;
        let shape = [conv.out_channels(), oh, ow];
        Ok(self.push(name, Op::Conv(conv), vec![x], shape))
    }

    /// Appends a batch norm of `x`; checks its statistics against `x`'s channels.
    pub fn batch_norm(&mut self, name: &str, x: ValueId, bn: BatchNorm) -> Result<ValueId> {
        let shape = self.shape(x);
        for (what, v) in [
            ("gamma", &bn.gamma),
            ("beta", &bn.beta),
            ("mean", &bn.mean),
            ("var", &bn.var),
        ] {
            require!(
                v.len() == shape[0],
                InvalidGraph,
                "{name}: batch norm {what} has {} values for {} channels",
                v.len(),
                shape[0]
            );
        }
        Ok(self.push(name, Op::BatchNorm(bn), vec![x], shape))
    }

    /// Appends a ReLU of `x`.
    pub fn relu(&mut self, name: &str, x: ValueId) -> ValueId {
        let shape = self.shape(x);
        self.push(name, Op::Relu, vec![x], shape)
    }

    /// Appends a max pool of `x`.
    pub fn max_pool(&mut self, name: &str, x: ValueId, pool: MaxPool) -> Result<ValueId> {
        let [c, h, w] = self.shape(x);
        require!(
            pool.pad[0] < pool.kernel[0] && pool.pad[1] < pool.kernel[1],
            InvalidGraph,
            "{name}: max pool padding must be smaller than its kernel"
        );
        let oh = out_size(h, pool.kernel[0], pool.stride[0], pool.pad[0], pool.pad[2])?;
        let ow = out_size(w, pool.kernel[1], pool.stride[1], pool.pad[1], pool.pad[3])?;
        Ok(self.push(name, Op::MaxPool(pool), vec![x], [c, oh, ow]))
    }

    /// Appends a global average pool of `x`: (C, 1, 1).
    pub fn global_avg_pool(&mut self, name: &str, x: ValueId) -> ValueId {
        let [c, _, _] = self.shape(x);
        self.push(name, Op::GlobalAvgPool, vec![x], [c, 1, 1])
    }

    /// Option-A shortcut with the paper's (and PyTorch's) channel padding: half the new
    /// channels before, the rest after.
    pub fn shortcut_a(
        &mut self,
        name: &str,
        x: ValueId,
        stride: usize,
        out_channels: usize,
    ) -> Result<ValueId> {
        let c = self.shape(x)[0];
        self.shortcut_a_padded(
            name,
            x,
            stride,
            out_channels.saturating_sub(c) / 2,
            out_channels,
        )
    }

    /// Option-A shortcut with `pad_before` zero channels first and the rest (up to
    /// `out_channels`) after, as an imported Slice + Pad may ask for.
    pub fn shortcut_a_padded(
        &mut self,
        name: &str,
        x: ValueId,
        stride: usize,
        pad_before: usize,
        out_channels: usize,
    ) -> Result<ValueId> {
        let [c, h, w] = self.shape(x);
        require!(
            stride > 0 && out_channels >= c + pad_before,
            InvalidGraph,
            "{name}: option-A shortcut cannot go from {c} to {out_channels} channels with \
             {pad_before} before"
        );
        let shape = [out_channels, h.div_ceil(stride), w.div_ceil(stride)];
        Ok(self.push(name, Op::ShortcutA { stride, pad_before }, vec![x], shape))
    }

    /// Appends `a + b` (same shapes), then ReLU if `relu`.
    pub fn add(&mut self, name: &str, a: ValueId, b: ValueId, relu: bool) -> Result<ValueId> {
        let shape = self.shape(a);
        require!(
            shape == self.shape(b),
            InvalidGraph,
            "{name}: cannot add shapes {:?} and {:?}",
            shape,
            self.shape(b)
        );
        Ok(self.push(name, Op::Add { relu }, vec![a, b], shape))
    }

    /// Appends a fully connected layer on the flattened `x`.
    pub fn linear(&mut self, name: &str, x: ValueId, linear: Linear) -> Result<ValueId> {
        let [c, h, w] = self.shape(x);
        require!(
            linear.weight.shape.len() == 2,
            InvalidGraph,
            "{name}: linear weight must be 2-D"
        );
        let [out, inp] = [linear.weight.shape[0], linear.weight.shape[1]];
        require!(
            inp == c * h * w,
            InvalidGraph,
            "{name}: linear expects {inp} inputs but gets {c}x{h}x{w}"
        );
        if let Some(b) = &linear.bias {
            require!(
                b.len() == out,
                InvalidGraph,
                "{name}: bias length {} != {out}",
                b.len()
            );
        }
        Ok(self.push(name, Op::Linear(linear), vec![x], [out, 1, 1]))
    }

    /// Appends a softmax over each image of `x`.
    pub fn softmax(&mut self, name: &str, x: ValueId) -> ValueId {
        let shape = self.shape(x);
        self.push(name, Op::Softmax, vec![x], shape)
    }

    /// Names a value so that a session can read it back.
    pub fn tap(&mut self, name: &str, v: ValueId) {
        self.taps.insert(name.to_string(), v);
    }

    /// Multiply-accumulates per image (convolutions and fully connected layers).
    pub fn macs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Conv(c) => {
                    let [kh, kw] = c.kernel();
                    (n.shape[0] * n.shape[1] * n.shape[2] * c.in_channels() * kh * kw) as u64
                }
                Op::Linear(l) => l.weight.numel() as u64,
                _ => 0,
            })
            .sum()
    }

    /// Stored weight values (convolutions, fully connected layers, batch norms).
    pub fn parameter_count(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match &n.op {
                Op::Conv(c) => c.weight.numel() + c.bias.as_ref().map_or(0, Vec::len),
                Op::Linear(l) => l.weight.numel() + l.bias.as_ref().map_or(0, Vec::len),
                Op::BatchNorm(b) => 4 * b.gamma.len(),
                _ => 0,
            })
            .sum()
    }

    /// How many nodes read each value (taps and the output count as readers).
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0; self.nodes.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                uses[i] += 1;
            }
        }
        uses[self.output] += 1;
        for &v in self.taps.values() {
            uses[v] += 1;
        }
        uses
    }

    /// Checks the invariants every pass and session relies on.
    pub fn validate(&self) -> Result<()> {
        require!(
            matches!(self.nodes.first().map(|n| &n.op), Some(Op::Input)),
            InvalidGraph,
            "graph must start with its input"
        );
        for (i, n) in self.nodes.iter().enumerate() {
            if i > 0 && matches!(n.op, Op::Input) {
                fail!(InvalidGraph, "graph has more than one input");
            }
            for &x in &n.inputs {
                require!(
                    x < i,
                    InvalidGraph,
                    "node {} ({}) reads a value produced later",
                    i,
                    n.name
                );
            }
            require!(
                n.shape.iter().all(|&d| d > 0),
                InvalidGraph,
                "node {} has an empty shape {:?}",
                n.name,
                n.shape
            );
        }
        require!(
            self.output < self.nodes.len(),
            InvalidGraph,
            "graph output out of range"
        );
        Ok(())
    }
}
