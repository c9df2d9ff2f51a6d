// Fully connected layer, y = x W^T + b with W as [out][in]: one invocation per (image, output).

struct LinearParams {
    batch: u32,
    in_features: u32,
    out_features: u32,
    has_bias: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;
@group(0) @binding(4) var<uniform> p: LinearParams;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if (i >= p.batch * p.out_features) {
        return;
    }
    let o = i % p.out_features;
    let n = i / p.out_features;
    let x_base = n * p.in_features;
    let w_base = o * p.in_features;
    var sum = 0.0;
    for (var k = 0u; k < p.in_features; k++) {
        sum += input[x_base + k] * weight[w_base + k];
    }
    if (p.has_bias != 0u) {
        sum += bias[o];
    }
    output[i] = sum;
}
