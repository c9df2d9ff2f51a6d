// Standalone inference batch norm, y = (x - mean) / sqrt(var + eps) * gamma + beta, optional ReLU.
// Used where BN cannot be folded into a conv (e.g. pre-activation nets) and to check the folding.
// `stats` holds gamma, beta, mean and var, each `channels` long, one after the other.

struct BatchNormParams {
    len: u32,
    channels: u32,
    spatial: u32,
    relu: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<uniform> p: BatchNormParams;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if (i >= p.len) {
        return;
    }
    let c = (i / p.spatial) % p.channels;
    let gamma = stats[c];
    let beta = stats[p.channels + c];
    let mean = stats[2u * p.channels + c];
    let variance = stats[3u * p.channels + c];
    var v = (input[i] - mean) / sqrt(variance + p.eps) * gamma + beta;
    if (p.relu != 0u) {
        v = max(v, 0.0);
    }
    output[i] = v;
}
