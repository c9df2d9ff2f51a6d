//! One training step of an unfused graph on the CPU: the reference the GPU trainer and the
//! PyTorch fixtures are compared with. Forward in train mode (batch norm with batch statistics),
//! mean softmax cross-entropy, backward in reverse node order (a value read by several nodes sums
//! their gradients), batch-norm running statistics, then SGD on every parameter.

use super::backward as bwd;
use crate::error::{Error, Result, require};
use crate::graph::{Graph, Op, ValueId};
use crate::tensor::Tensor;
use crate::train::state_dict::{self, ParamKind};

/// SGD and batch-norm hyper-parameters, PyTorch's meaning (tests/fixtures/training/README.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    /// Learning rate.
    pub lr: f32,
    /// SGD momentum: v = momentum v + g, w -= lr v.
    pub momentum: f32,
    /// Added to every parameter's gradient as weight_decay * w.
    pub weight_decay: f32,
    /// running = (1 - bn_momentum) running + bn_momentum batch statistic.
    pub bn_momentum: f32,
}

impl Default for Hyper {
    /// The paper's CIFAR recipe (lr 0.1, momentum 0.9, weight decay 1e-4) and torch's BN momentum.
    fn default() -> Self {
        Self {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
            bn_momentum: 0.1,
        }
    }
}

/// What one step computed, before its update.
pub struct StepOutput {
    /// Train-mode logits, (batch, classes).
    pub logits: Vec<f32>,
    /// Mean softmax cross-entropy of the batch.
    pub loss: f32,
    /// d loss / d parameter (without weight decay), in the order and with the names of
    /// [`state_dict::params`].
    pub grads: Vec<(String, Tensor)>,
}

/// A graph being trained on the CPU, with its SGD momentum buffers.
pub struct CpuTrainer {
    /// The network; its parameters and running statistics change with every step.
    pub graph: Graph,
    /// One momentum buffer per parameter of [`state_dict::params`], zero at first.
    pub velocity: Vec<Vec<f32>>,
    /// Steps taken (batch norm's `num_batches_tracked`).
    pub steps: i64,
    /// The hyper-parameters.
    pub hyper: Hyper,
}

/// Forward values of a train-mode pass, and the batch statistics backward needs.
struct Forward {
    /// Every node's output, by node id.
    values: Vec<Vec<f32>>,
    /// Per batch-norm node: its batch mean and biased variance.
    stats: Vec<Option<(Vec<f32>, Vec<f32>)>>,
}

/// A gradient of one node's parameter.
type ParamGrad = (ValueId, ParamKind, Vec<f32>);

impl CpuTrainer {
    /// Starts training `graph` (unfused, as `ArchSpec::build` returns it).
    ///
    /// # Panics
    /// On a graph [`CpuTrainer::try_new`] refuses.
    pub fn new(graph: Graph, hyper: Hyper) -> Self {
        Self::try_new(graph, hyper).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts training `graph`, refusing ops this trainer has no backward for: fused epilogues
    /// (a conv's bias, residual or ReLU, a batch norm's ReLU), and softmax (the loss takes the
    /// logits).
    pub fn try_new(graph: Graph, hyper: Hyper) -> Result<Self> {
        graph.validate()?;
        for n in &graph.nodes {
            let fused = match &n.op {
                Op::Conv(c) => c.bias.is_some() || c.relu || n.inputs.len() > 1,
                Op::BatchNorm(bn) => bn.relu,
                Op::Softmax => true,
                _ => false,
            };
            require!(
                !fused,
                Unsupported,
                "training layer '{}': a fused or softmax {} has no backward; train the unfused graph",
                n.name,
                n.op.kind()
            );
        }
        let velocity = state_dict::params(&graph)
            .iter()
            .map(|p| vec![0.0; p.shape.iter().product()])
            .collect();
        Ok(Self {
            graph,
            velocity,
            steps: 0,
            hyper,
        })
    }

    /// One SGD step on a batch of `batch` NCHW images and their class labels.
    ///
    /// # Panics
    /// On input [`CpuTrainer::try_step`] refuses.
    pub fn step(&mut self, input: &[f32], labels: &[usize], batch: usize) -> StepOutput {
        self.try_step(input, labels, batch)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// One SGD step, refusing an input of the wrong size, labels that are not one per image and
    /// below the class count, and a batch too small for batch statistics.
    pub fn try_step(
        &mut self,
        input: &[f32],
        labels: &[usize],
        batch: usize,
    ) -> Result<StepOutput> {
        self.check_batch(input, labels, batch)?;
        let g = &self.graph;
        let fwd = forward(g, input, batch);
        let logits = fwd.values[g.output].clone();
        let classes = g.output_shape().iter().product();
        let (loss, dlogits) = bwd::softmax_cross_entropy(&logits, labels, classes);
        let node_grads = backward(g, &fwd, dlogits, batch);
        self.update_running_stats(&fwd, batch);
        let grads = self.apply_sgd(node_grads);
        self.steps += 1;
        Ok(StepOutput {
            logits,
            loss,
            grads,
        })
    }

    /// SGD on every parameter from its gradient; returns the gradients by torch name, in
    /// [`state_dict::params`] order.
    fn apply_sgd(&mut self, mut node_grads: Vec<ParamGrad>) -> Vec<(String, Tensor)> {
        let h = self.hyper;
        let mut grads = Vec::new();
        for (k, p) in state_dict::params(&self.graph).iter().enumerate() {
            let at = node_grads
                .iter()
                .position(|(node, kind, _)| *node == p.node && *kind == p.kind);
            // A parameter the loss does not reach has gradient zero.
            let grad = at.map_or_else(
                || vec![0.0; self.velocity[k].len()],
                |i| node_grads.swap_remove(i).2,
            );
            let w = state_dict::param_data_mut(&mut self.graph, p);
            let v = &mut self.velocity[k];
            bwd::sgd_step(w, &grad, v, h.lr, h.momentum, h.weight_decay);
            let shape = p.shape.clone();
            grads.push((p.name.clone(), Tensor { shape, data: grad }));
        }
        grads
    }

    /// The train-mode logits of a batch (batch statistics, nothing updated): what a step's
    /// forward computes, for finite-difference checks of its gradients.
    pub fn train_logits(&self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.check_batch(input, &vec![0; batch], batch)?;
        Ok(forward(&self.graph, input, batch)
            .values
            .swap_remove(self.graph.output))
    }

    fn check_batch(&self, input: &[f32], labels: &[usize], batch: usize) -> Result<()> {
        let g = &self.graph;
        let per_image: usize = g.input_shape().iter().product();
        require!(
            batch > 0 && input.len() == batch * per_image,
            InvalidInput,
            "training input has {} values, not {batch} images of {:?}",
            input.len(),
            g.input_shape()
        );
        require!(
            labels.len() == batch,
            InvalidInput,
            "{} labels for a batch of {batch}",
            labels.len()
        );
        let classes: usize = g.output_shape().iter().product();
        if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
            return Err(Error::InvalidInput(format!(
                "label {bad} is not below the network's {classes} classes"
            )));
        }
        for n in &g.nodes {
            // The unbiased running variance divides by M - 1 (PyTorch refuses M = 1 too).
            require!(
                !matches!(n.op, Op::BatchNorm(_)) || batch * n.shape[1] * n.shape[2] > 1,
                InvalidInput,
                "training layer '{}': batch norm needs more than one value per channel; use a batch > 1",
                n.name
            );
        }
        Ok(())
    }

    /// running = (1 - m) running + m batch, the variance's batch statistic unbiased
    /// (M / (M - 1)); in f64 like torch's CPU kernel, rounded once.
    fn update_running_stats(&mut self, fwd: &Forward, batch: usize) {
        let m = self.hyper.bn_momentum as f64;
        for (node, stats) in self.graph.nodes.iter_mut().zip(&fwd.stats) {
            let (Op::BatchNorm(bn), Some((mean, var))) = (&mut node.op, stats) else {
                continue;
            };
            let count = (batch * node.shape[1] * node.shape[2]) as f64;
            let unbias = count / (count - 1.0);
            for c in 0..bn.mean.len() {
                bn.mean[c] = ((1.0 - m) * bn.mean[c] as f64 + m * mean[c] as f64) as f32;
                bn.var[c] = ((1.0 - m) * bn.var[c] as f64 + m * var[c] as f64 * unbias) as f32;
            }
        }
    }
}

/// The train-mode forward pass: like `run_graph`, but batch norm normalises with the batch's
/// statistics, which are kept for backward and the running-statistics update.
fn forward(g: &Graph, input: &[f32], batch: usize) -> Forward {
    let mut values: Vec<Vec<f32>> = Vec::with_capacity(g.nodes.len());
    let mut stats = Vec::with_capacity(g.nodes.len());
    for node in &g.nodes {
        let x = |k: usize| values[node.inputs[k]].as_slice();
        let in_shape = |k: usize| g.shape(node.inputs[k]);
        let mut stat = None;
        let v = match &node.op {
            Op::Input => input.to_vec(),
            Op::Conv(c) => super::conv2d(x(0), batch, in_shape(0), c, None, node.shape),
            Op::BatchNorm(bn) => {
                let t = bwd::batch_norm_train(x(0), batch, node.shape, &bn.gamma, &bn.beta, bn.eps);
                stat = Some((t.mean, t.var));
                t.y
            }
            Op::Relu => super::relu(x(0)),
            Op::MaxPool(p) => super::max_pool(x(0), batch, in_shape(0), p, node.shape),
            Op::GlobalAvgPool => super::global_avg_pool(x(0), batch, in_shape(0)),
            Op::ShortcutA { stride, pad_before } => {
                super::shortcut_a(x(0), batch, in_shape(0), *stride, *pad_before, node.shape)
            }
            Op::Add { relu } => super::add(x(0), x(1), *relu),
            Op::Linear(l) => super::linear(x(0), batch, l),
            Op::Softmax => super::softmax(x(0), batch),
        };
        values.push(v);
        stats.push(stat);
    }
    Forward { values, stats }
}

/// Backward from the logits' gradient in reverse node order; returns every parameter gradient.
fn backward(g: &Graph, fwd: &Forward, dlogits: Vec<f32>, batch: usize) -> Vec<ParamGrad> {
    let mut dvalues: Vec<Option<Vec<f32>>> = vec![None; g.nodes.len()];
    dvalues[g.output] = Some(dlogits);
    let mut param_grads = Vec::new();
    for id in (1..g.nodes.len()).rev() {
        // A node the loss does not depend on sends nothing back.
        let Some(dy) = dvalues[id].take() else {
            continue;
        };
        for (input, dx) in node_backward(g, fwd, id, &dy, batch, &mut param_grads) {
            accumulate(&mut dvalues[input], dx);
        }
    }
    param_grads
}

/// Adds a gradient into a value's (a value read by several nodes gets the sum).
fn accumulate(slot: &mut Option<Vec<f32>>, dx: Vec<f32>) {
    match slot {
        Some(acc) => acc.iter_mut().zip(&dx).for_each(|(a, d)| *a += d),
        None => *slot = Some(dx),
    }
}

/// One node's backward: pushes its parameters' gradients and returns (input, gradient) pairs.
/// The network input's gradient is never needed, so a node reading node 0 skips it.
fn node_backward(
    g: &Graph,
    fwd: &Forward,
    id: ValueId,
    dy: &[f32],
    batch: usize,
    param_grads: &mut Vec<ParamGrad>,
) -> Vec<(ValueId, Vec<f32>)> {
    let node = &g.nodes[id];
    let input = node.inputs.first().copied().unwrap_or(0);
    let (x, in_shape) = (fwd.values[input].as_slice(), g.shape(input));
    let y = fwd.values[id].as_slice();
    let dx = match &node.op {
        Op::Input => return vec![],
        Op::Conv(c) => {
            let dw = bwd::conv2d_backward_weight(dy, x, batch, in_shape, c, node.shape);
            param_grads.push((id, ParamKind::ConvWeight, dw));
            if input == 0 {
                return vec![];
            }
            bwd::conv2d_backward_input(dy, batch, in_shape, c, node.shape)
        }
        Op::BatchNorm(bn) => {
            let (mean, var) = fwd.stats[id]
                .as_ref()
                .expect("forward kept the batch statistics");
            let (dx, dgamma, dbeta) =
                bwd::batch_norm_backward(dy, x, batch, node.shape, &bn.gamma, mean, var, bn.eps);
            param_grads.push((id, ParamKind::BnGamma, dgamma));
            param_grads.push((id, ParamKind::BnBeta, dbeta));
            dx
        }
        Op::Relu => bwd::relu_backward(dy, y),
        Op::MaxPool(p) => bwd::max_pool_backward(dy, x, batch, in_shape, p, node.shape),
        Op::GlobalAvgPool => bwd::global_avg_pool_backward(dy, batch, in_shape),
        Op::ShortcutA { stride, pad_before } => {
            bwd::shortcut_a_backward(dy, batch, in_shape, *stride, *pad_before, node.shape)
        }
        Op::Add { relu } => {
            let d = if *relu {
                bwd::relu_backward(dy, y)
            } else {
                dy.to_vec()
            };
            return vec![(node.inputs[0], d.clone()), (node.inputs[1], d)];
        }
        Op::Linear(l) => {
            let (dx, dw, db) = bwd::linear_backward(dy, x, batch, l);
            param_grads.push((id, ParamKind::LinearWeight, dw));
            param_grads.push((id, ParamKind::LinearBias, db));
            dx
        }
        Op::Softmax => unreachable!("CpuTrainer::try_new refuses softmax"),
    };
    if input == 0 {
        vec![]
    } else {
        vec![(input, dx)]
    }
}
