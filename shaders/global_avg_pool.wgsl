// Global average pool on the channel-blocked layout: one invocation per (image, channel block).

struct GlobalAvgPoolParams {
    planes: u32,
    spatial: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: GlobalAvgPoolParams;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let plane = gid.x + gid.y * groups.x * 64u;
    if (plane >= p.planes) {
        return;
    }
    let base = plane * p.spatial;
    var sum = vec4<f32>(0.0);
    for (var i = 0u; i < p.spatial; i++) {
        sum += input[base + i];
    }
    output[plane] = sum / f32(p.spatial);
}
