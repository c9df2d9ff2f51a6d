// Fully connected layer, y = x W^T + b. The input is one image's whole activation in the
// channel-blocked layout (`in_len` floats, padding included); W was reordered at load time to that
// same order, with zero columns for padding channels, so this is a plain dot product. Output
// (out, 1, 1) blocked is just `out_len` = out rounded up to 4 floats; the padding is written 0.
// One invocation per (image, output).

struct LinearParams {
    batch: u32,
    in_len: u32,
    out_features: u32,
    out_len: u32,
}

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;
@group(0) @binding(4) var<uniform> p: LinearParams;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if (i >= p.batch * p.out_len) {
        return;
    }
    let o = i % p.out_len;
    let n = i / p.out_len;
    if (o >= p.out_features) {
        output[i] = 0.0;
        return;
    }
    let len4 = p.in_len / 4u;
    let x_base = n * len4;
    let w_base = o * len4;
    var sum = vec4<f32>(0.0);
    for (var k = 0u; k < len4; k++) {
        sum += input[x_base + k] * weight[w_base + k];
    }
    output[i] = sum.x + sum.y + sum.z + sum.w + bias[o];
}
