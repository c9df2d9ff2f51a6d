// Training: y = a, + b with ADD (the residual sum), then max(y, 0) with RELU, on plain NCHW
// values. NaN stays NaN, as in inference (fragments/relu.wgsl).

// include: flat_index
// include: relu
// include: train_pointwise

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainPointwiseParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.len) {
        return;
    }
    var v = a[i];
    if ((p.flags & ADD) != 0u) {
        v += b[i];
    }
    if ((p.flags & RELU) != 0u) {
        v = relu4(vec4<f32>(v)).x;
    }
    y[i] = v;
}
