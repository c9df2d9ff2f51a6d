//! Graph passes run before a network reaches the GPU: fold inference batch norm into the preceding
//! convolution, fuse the residual add and the ReLU into the convolution's epilogue.
//! Each pass only merges a node into its producer when nothing else reads the producer's value.
//! Passes take the graph by value and move every node (and its weights) into the result: a
//! rewrite never copies a weight.

use super::{Graph, Node, Op, ValueId};

/// All passes, in the order that keeps the epilogue's meaning: conv + bias, + residual, then ReLU.
pub fn optimize(g: Graph) -> Graph {
    let g = rewrite(g, fold_batch_norm);
    let g = rewrite(g, fuse_residual_add);
    rewrite(g, fuse_relu)
}

/// What a pass decides for one node: keep it, or say which (already emitted) node now produces
/// its value.
type Pass = fn(&mut [Node], &Node, &[usize]) -> Option<ValueId>;

/// Rebuilds the graph node by node. `pass` sees the nodes emitted so far, the node (inputs already
/// renumbered) and how many readers each new value had in the old graph.
fn rewrite(g: Graph, pass: Pass) -> Graph {
    let old_uses = g.use_counts();
    let mut remap: Vec<ValueId> = Vec::with_capacity(g.nodes.len());
    let mut nodes: Vec<Node> = Vec::with_capacity(g.nodes.len());
    // Readers of each new value, counted in the old graph (fusion never changes them).
    let mut uses: Vec<usize> = Vec::new();
    for (old_id, mut node) in g.nodes.into_iter().enumerate() {
        node.inputs = node.inputs.iter().map(|&i| remap[i]).collect();
        match pass(&mut nodes, &node, &uses) {
            Some(target) => {
                remap.push(target);
                uses[target] = old_uses[old_id];
            }
            None => {
                remap.push(nodes.len());
                nodes.push(node);
                uses.push(old_uses[old_id]);
            }
        }
    }
    Graph {
        nodes,
        output: remap[g.output],
        taps: g.taps.into_iter().map(|(k, v)| (k, remap[v])).collect(),
    }
}

/// The producer of `v` if this node is its only reader.
fn sole_producer<'a>(nodes: &'a mut [Node], uses: &[usize], v: ValueId) -> Option<&'a mut Node> {
    (uses[v] == 1).then(|| &mut nodes[v])
}

fn fold_batch_norm(nodes: &mut [Node], node: &Node, uses: &[usize]) -> Option<ValueId> {
    let Op::BatchNorm(bn) = &node.op else {
        return None;
    };
    let x = node.inputs[0];
    let producer = sole_producer(nodes, uses, x)?;
    let Op::Conv(conv) = &mut producer.op else {
        return None;
    };
    if conv.relu || producer.inputs.len() > 1 || bn.relu {
        return None;
    }
    let (scale, shift) = bn.scale_shift();
    let per_out = conv.weight.numel() / conv.out_channels();
    for (o, chunk) in conv.weight.data.chunks_mut(per_out).enumerate() {
        chunk.iter_mut().for_each(|w| *w *= scale[o]);
    }
    let bias = conv.bias.get_or_insert_with(|| vec![0.0; scale.len()]);
    for o in 0..scale.len() {
        bias[o] = bias[o] * scale[o] + shift[o];
    }
    Some(x)
}

fn fuse_residual_add(nodes: &mut [Node], node: &Node, uses: &[usize]) -> Option<ValueId> {
    let Op::Add { relu } = node.op else {
        return None;
    };
    let [a, b] = [node.inputs[0], node.inputs[1]];
    if a == b {
        return None;
    }
    // The conv that absorbs the add must come after the other operand, so that the other operand
    // is ready when the conv runs: only the later of the two can absorb it.
    let (conv_id, other) = (a.max(b), a.min(b));
    let producer = sole_producer(nodes, uses, conv_id)?;
    let Op::Conv(conv) = &mut producer.op else {
        return None;
    };
    if conv.relu || producer.inputs.len() > 1 {
        return None;
    }
    conv.relu = relu;
    producer.inputs.push(other);
    Some(conv_id)
}

fn fuse_relu(nodes: &mut [Node], node: &Node, uses: &[usize]) -> Option<ValueId> {
    if !matches!(node.op, Op::Relu) {
        return None;
    }
    let x = node.inputs[0];
    let producer = sole_producer(nodes, uses, x)?;
    let relu = match &mut producer.op {
        Op::Conv(c) => &mut c.relu,
        Op::Add { relu } => relu,
        Op::BatchNorm(bn) => &mut bn.relu,
        _ => return None,
    };
    // relu(relu(x)) == relu(x): a producer that already ends in ReLU absorbs this one too.
    *relu = true;
    Some(x)
}
