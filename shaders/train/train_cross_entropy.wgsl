// Training: softmax cross-entropy of each image's logits against its label, one invocation per
// image: the image's loss (log-sum-exp minus the label's logit, max-shifted) goes to `losses[n]`
// and whether it is misclassified (1 or 0; ties count as errors) to `losses[batch + n]` (the host
// averages both: all a step reads back), and the gradient of the batch mean,
// (softmax - one_hot) / batch, to dlogits.

// include: flat_index
// include: train_linear

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<uniform> p: TrainLinearParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat_index(gid, groups);
    if (n >= p.batch) {
        return;
    }
    let classes = p.out_features;
    let row = n * classes;
    var top = logits[row];
    for (var k = 1u; k < classes; k++) {
        top = max(top, logits[row + k]);
    }
    var sum = 0.0;
    for (var k = 0u; k < classes; k++) {
        sum += exp(logits[row + k] - top);
    }
    let label = labels[n];
    losses[n] = log(sum) + top - logits[row + label];
    var wrong = 0.0;
    for (var k = 0u; k < classes; k++) {
        if (k != label && logits[row + k] >= logits[row + label]) {
            wrong = 1.0;
        }
    }
    losses[p.batch + n] = wrong;
    let scale = 1.0 / f32(p.batch);
    for (var k = 0u; k < classes; k++) {
        var g = exp(logits[row + k] - top) / sum;
        if (k == label) {
            g -= 1.0;
        }
        dlogits[row + k] = g * scale;
    }
}
