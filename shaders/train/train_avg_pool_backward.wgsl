// Training: the gradient through global average pooling: every value of a map gets its
// channel's dy / (h * w); with ACCUMULATE added to dx.

// include: flat_index
// include: train_pool

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<uniform> p: TrainPoolParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let in_hw = p.in_h * p.in_w;
    if (i >= p.batch * p.in_c * in_hw) {
        return;
    }
    var v = dy[i / in_hw] / f32(in_hw);
    if ((p.flags & ACCUMULATE) != 0u) {
        v += dx[i];
    }
    dx[i] = v;
}
