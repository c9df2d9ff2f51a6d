// Elementwise a + b, optional ReLU: the residual add where it cannot be fused into a conv.

struct AddParams {
    len: u32,
    relu: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<uniform> p: AddParams;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if (i >= p.len) {
        return;
    }
    var v = a[i] + b[i];
    if (p.relu != 0u) {
        v = max(v, 0.0);
    }
    output[i] = v;
}
