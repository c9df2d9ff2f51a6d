// Training: adds up the `chunks` planes of partial sums a split reduction left in a scratch buffer
// (plane c holds chunk c's share of all `len` values) and writes the totals to the gradient buffer
// at `offset`. `chunks` is small (the host keeps it under a few hundred), so no loop runs long.

// include: flat_index

struct SumChunksParams {
    len: u32,
    chunks: u32,
    offset: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> grads: array<f32>;
@group(0) @binding(2) var<uniform> p: SumChunksParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.len) {
        return;
    }
    var sum = 0.0;
    for (var c = 0u; c < p.chunks; c++) {
        sum += partial[c * p.len + i];
    }
    grads[p.offset + i] = sum;
}
