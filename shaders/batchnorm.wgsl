// Standalone inference batch norm, y = (x - mean) / sqrt(var + eps) * gamma + beta, optional ReLU.
// Used where BN cannot be folded into a conv (e.g. pre-activation nets) and to check the folding.
// `stats` holds gamma, beta, mean and var, each padded to `blocks` vec4s (padding: gamma 0, beta 0,
// mean 0, var 1, so padding channels stay 0). One invocation per vec4 of the channel-blocked layout.

// include: flat_index
// include: relu

struct BatchNormParams {
    len4: u32,
    blocks: u32,
    spatial: u32,
    relu: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: BatchNormParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.len4) {
        return;
    }
    let c4 = (i / p.spatial) % p.blocks;
    let gamma = stats[c4];
    let beta = stats[p.blocks + c4];
    let mean = stats[2u * p.blocks + c4];
    let variance = stats[3u * p.blocks + c4];
    var v = (input[i] - mean) / sqrt(variance + p.eps) * gamma + beta;
    if (p.relu != 0u) {
        v = relu4(v);
    }
    output[i] = v;
}
