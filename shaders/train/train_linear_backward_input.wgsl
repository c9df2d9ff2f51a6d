// Training: the gradient of the fully connected layer's input, dx = dy W, one invocation per
// (image, input); with ACCUMULATE added to dx.

// include: flat_index
// include: train_linear

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainLinearParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.batch * p.in_features) {
        return;
    }
    let n = i / p.in_features;
    let k = i % p.in_features;
    var sum = 0.0;
    for (var o = 0u; o < p.out_features; o++) {
        sum += dy[n * p.out_features + o] * weights[p.weight_offset + o * p.in_features + k];
    }
    if ((p.flags & ACCUMULATE) != 0u) {
        sum += dx[i];
    }
    dx[i] = sum;
}
