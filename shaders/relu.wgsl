// Standalone ReLU, for graphs where it cannot be fused into a producer's epilogue.
// Works on whole vec4 blocks of the channel-blocked layout (padding channels stay 0); NaN stays
// NaN (see fragments/relu.wgsl).

// include: flat_index
// include: relu

struct ReluParams {
    len4: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: ReluParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.len4) {
        return;
    }
    output[i] = relu4(input[i]);
}
