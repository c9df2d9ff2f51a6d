// Adds up the partial sums of a split kernel (split-K convolutions, long fully connected dot
// products, global average pools over large maps), + bias, then the convolution epilogue
// (+ residual, ReLU). The partial sums are `splits` planes of `len4` vec4s, each laid out like
// the output (channel-blocked); bias is one vec4 per output channel block. One invocation per
// output vec4; the loop runs `splits` times, far below any driver's loop limit.

// include: flat_index
// include: epilogue

struct SplitReduceParams {
    len4: u32,
    splits: u32,
    out_c4: u32,
    out_hw: u32,
    flags: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> partial: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: SplitReduceParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.len4) {
        return;
    }
    var sum = vec4<f32>(0.0);
    for (var s = 0u; s < p.splits; s++) {
        sum += partial[s * p.len4 + i];
    }
    let oc4 = (i / p.out_hw) % p.out_c4;
    epilogue(i, sum + bias[oc4], p.flags);
}
