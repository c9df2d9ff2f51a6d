// Elementwise a + b, optional ReLU: the residual add where it cannot be fused into a conv.
// Works on whole vec4 blocks of the channel-blocked layout (padding channels stay 0).

// include: flat_index
// include: relu

struct AddParams {
    len4: u32,
    relu: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: AddParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.len4) {
        return;
    }
    var v = a[i] + b[i];
    if (p.relu != 0u) {
        v = relu4(v);
    }
    output[i] = v;
}
