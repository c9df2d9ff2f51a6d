// Training: the fully connected layer, one invocation per (image, output); it loops over the
// inputs (the host checks in_features is under Mesa's 65,535-iteration cap).

// include: flat_index
// include: train_linear

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainLinearParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.batch * p.out_features) {
        return;
    }
    let n = i / p.out_features;
    let o = i % p.out_features;
    var sum = weights[p.bias_offset + o];
    let w = p.weight_offset + o * p.in_features;
    for (var k = 0u; k < p.in_features; k++) {
        sum += x[n * p.in_features + k] * weights[w + k];
    }
    y[i] = sum;
}
