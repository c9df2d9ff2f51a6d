//! Graph IR: every node produces one activation of shape (C, H, W) per image.

use crate::tensor::Tensor;
use anyhow::{Result, bail, ensure};
use std::collections::BTreeMap;

/// Index of a node, and so of the value (activation) it produces.
pub type ValueId = usize;

/// Per-image activation shape: channels, height, width.
pub type Shape = [usize; 3];

/// 2-D convolution (groups = 1) with its fused epilogue: + bias, + residual (the node's second
/// input, if any), then ReLU.
#[derive(Clone, Debug)]
pub struct Conv {
    /// [out_c, in_c, kernel_h, kernel_w]
    pub weight: Tensor,
    pub bias: Option<Vec<f32>>,
    pub stride: [usize; 2],
    /// top, left, bottom, right
    pub pad: [usize; 4],
    pub relu: bool,
}

impl Conv {
    pub fn out_channels(&self) -> usize {
        self.weight.shape[0]
    }
    pub fn in_channels(&self) -> usize {
        self.weight.shape[1]
    }
    pub fn kernel(&self) -> [usize; 2] {
        [self.weight.shape[2], self.weight.shape[3]]
    }
}

/// Inference batch norm with its running statistics: y = (x - mean) / sqrt(var + eps) * gamma + beta.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
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
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// top, left, bottom, right
    pub pad: [usize; 4],
}

/// Fully connected layer on the flattened (C*H*W) activation; output shape (out, 1, 1).
#[derive(Clone, Debug)]
pub struct Linear {
    /// [out, in]
    pub weight: Tensor,
    pub bias: Option<Vec<f32>>,
}

#[derive(Clone, Debug)]
pub enum Op {
    Input,
    Conv(Conv),
    BatchNorm(BatchNorm),
    Relu,
    MaxPool(MaxPool),
    GlobalAvgPool,
    /// The paper's option-A shortcut: take every `stride`-th pixel and zero-pad channels,
    /// `pad_before` zero channels first, the rest after, up to the node's channel count.
    ShortcutA {
        stride: usize,
        pad_before: usize,
    },
    /// Elementwise sum of the two inputs, optionally followed by ReLU.
    Add {
        relu: bool,
    },
    Linear(Linear),
    /// Softmax over the flattened activation of each image.
    Softmax,
}

impl Op {
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

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub shape: Shape,
}

/// A network: node 0 is the input; nodes are in execution (topological) order.
#[derive(Clone, Debug)]
pub struct Graph {
    pub nodes: Vec<Node>,
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
    ensure!(stride > 0, "stride must be positive");
    let padded = input + pad_lo + pad_hi;
    ensure!(
        padded >= kernel,
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

    pub fn input_shape(&self) -> Shape {
        self.nodes[0].shape
    }

    pub fn output_shape(&self) -> Shape {
        self.nodes[self.output].shape
    }

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

    pub fn conv(&mut self, name: &str, x: ValueId, conv: Conv) -> Result<ValueId> {
        let [c, h, w] = self.shape(x);
        ensure!(
            conv.weight.shape.len() == 4,
            "{name}: conv weight must be 4-D, got {:?}",
            conv.weight.shape
        );
        ensure!(
            conv.in_channels() == c,
            "{name}: conv expects {} input channels but its input has {c}",
            conv.in_channels()
        );
        if let Some(b) = &conv.bias {
            ensure!(
                b.len() == conv.out_channels(),
                "{name}: bias length {} != {} output channels",
                b.len(),
                conv.out_channels()
            );
        }
        let [kh, kw] = conv.kernel();
        let oh = out_size(h, kh, conv.stride[0], conv.pad[0], conv.pad[2])
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let ow = out_size(w, kw, conv.stride[1], conv.pad[1], conv.pad[3])
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let shape = [conv.out_channels(), oh, ow];
        Ok(self.push(name, Op::Conv(conv), vec![x], shape))
    }

    pub fn batch_norm(&mut self, name: &str, x: ValueId, bn: BatchNorm) -> Result<ValueId> {
        let shape = self.shape(x);
        for (what, v) in [
            ("gamma", &bn.gamma),
            ("beta", &bn.beta),
            ("mean", &bn.mean),
            ("var", &bn.var),
        ] {
            ensure!(
                v.len() == shape[0],
                "{name}: batch norm {what} has {} values for {} channels",
                v.len(),
                shape[0]
            );
        }
        Ok(self.push(name, Op::BatchNorm(bn), vec![x], shape))
    }

    pub fn relu(&mut self, name: &str, x: ValueId) -> ValueId {
        let shape = self.shape(x);
        self.push(name, Op::Relu, vec![x], shape)
    }

    pub fn max_pool(&mut self, name: &str, x: ValueId, pool: MaxPool) -> Result<ValueId> {
        let [c, h, w] = self.shape(x);
        ensure!(
            pool.pad[0] < pool.kernel[0] && pool.pad[1] < pool.kernel[1],
            "{name}: max pool padding must be smaller than its kernel"
        );
        let oh = out_size(h, pool.kernel[0], pool.stride[0], pool.pad[0], pool.pad[2])?;
        let ow = out_size(w, pool.kernel[1], pool.stride[1], pool.pad[1], pool.pad[3])?;
        Ok(self.push(name, Op::MaxPool(pool), vec![x], [c, oh, ow]))
    }

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
        ensure!(
            stride > 0 && out_channels >= c + pad_before,
            "{name}: option-A shortcut cannot go from {c} to {out_channels} channels with \
             {pad_before} before"
        );
        let shape = [out_channels, h.div_ceil(stride), w.div_ceil(stride)];
        Ok(self.push(name, Op::ShortcutA { stride, pad_before }, vec![x], shape))
    }

    pub fn add(&mut self, name: &str, a: ValueId, b: ValueId, relu: bool) -> Result<ValueId> {
        let shape = self.shape(a);
        ensure!(
            shape == self.shape(b),
            "{name}: cannot add shapes {:?} and {:?}",
            shape,
            self.shape(b)
        );
        Ok(self.push(name, Op::Add { relu }, vec![a, b], shape))
    }

    pub fn linear(&mut self, name: &str, x: ValueId, linear: Linear) -> Result<ValueId> {
        let [c, h, w] = self.shape(x);
        ensure!(
            linear.weight.shape.len() == 2,
            "{name}: linear weight must be 2-D"
        );
        let [out, inp] = [linear.weight.shape[0], linear.weight.shape[1]];
        ensure!(
            inp == c * h * w,
            "{name}: linear expects {inp} inputs but gets {c}x{h}x{w}"
        );
        if let Some(b) = &linear.bias {
            ensure!(b.len() == out, "{name}: bias length {} != {out}", b.len());
        }
        Ok(self.push(name, Op::Linear(linear), vec![x], [out, 1, 1]))
    }

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
        ensure!(
            matches!(self.nodes.first().map(|n| &n.op), Some(Op::Input)),
            "graph must start with its input"
        );
        for (i, n) in self.nodes.iter().enumerate() {
            if i > 0 && matches!(n.op, Op::Input) {
                bail!("graph has more than one input");
            }
            for &x in &n.inputs {
                ensure!(
                    x < i,
                    "node {} ({}) reads a value produced later",
                    i,
                    n.name
                );
            }
            ensure!(
                n.shape.iter().all(|&d| d > 0),
                "node {} has an empty shape {:?}",
                n.name,
                n.shape
            );
        }
        ensure!(self.output < self.nodes.len(), "graph output out of range");
        Ok(())
    }
}
