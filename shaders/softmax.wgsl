// Softmax over each image's row of `len` values: one invocation per image (rows are short).

struct SoftmaxParams {
    rows: u32,
    len: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<f32>;
@group(0) @binding(2) var<uniform> p: SoftmaxParams;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = gid.x + gid.y * groups.x * 64u;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.len;
    var m = -3.402823e38;
    for (var i = 0u; i < p.len; i++) {
        m = max(m, input[base + i]);
    }
    var sum = 0.0;
    for (var i = 0u; i < p.len; i++) {
        let e = exp(input[base + i] - m);
        output[base + i] = e;
        sum += e;
    }
    for (var i = 0u; i < p.len; i++) {
        output[base + i] = output[base + i] / sum;
    }
}
