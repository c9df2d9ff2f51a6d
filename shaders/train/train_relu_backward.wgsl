// Training: the gradient through a ReLU, dx = dy where the ReLU's output y > 0 (with MASK; without
// it dy passes unchanged, for a sum's inputs), added to dx with ACCUMULATE. A NaN output passes
// no gradient.

// include: flat_index
// include: train_pointwise

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainPointwiseParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.len) {
        return;
    }
    var v = dy[i];
    if ((p.flags & MASK) != 0u && !(y[i] > 0.0)) {
        v = 0.0;
    }
    if ((p.flags & ACCUMULATE) != 0u) {
        v += dx[i];
    }
    dx[i] = v;
}
