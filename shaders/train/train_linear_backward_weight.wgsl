// Training: the gradients of the fully connected layer's weights and bias, summed over the batch:
// one invocation per (output, input) computes dW = dy^T x, and input index `in_features` of each
// output row stands for the bias, db = the sum of dy.

// include: flat_index
// include: train_linear

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainLinearParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let row = p.in_features + 1u;
    if (i >= p.out_features * row) {
        return;
    }
    let o = i / row;
    let k = i % row;
    var sum = 0.0;
    for (var n = 0u; n < p.batch; n++) {
        var v = 1.0;
        if (k < p.in_features) {
            v = x[n * p.in_features + k];
        }
        sum += dy[n * p.out_features + o] * v;
    }
    if (k < p.in_features) {
        grads[p.weight_offset + o * p.in_features + k] = sum;
    } else {
        grads[p.bias_offset + o] = sum;
    }
}
