// Training: global average pool on plain NCHW values, one invocation per (image, channel), which
// loops over the map (the host checks it is under Mesa's 65,535-iteration cap).

// include: flat_index
// include: train_pool

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: TrainPoolParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.batch * p.in_c) {
        return;
    }
    let in_hw = p.in_h * p.in_w;
    var sum = 0.0;
    for (var q = 0u; q < in_hw; q++) {
        sum += x[i * in_hw + q];
    }
    y[i] = sum / f32(in_hw);
}
