// Global average pool on the channel-blocked layout. One invocation per (chunk, plane), a plane
// being one (image, channel block): it sums at most `chunk` positions, so no invocation loops
// long (Mesa's llvmpipe silently stops a shader's loops after 65,535 iterations in all: a pool
// over a 1100x1100 map once returned 65535/1210000 of the mean). With one chunk per plane the
// mean goes straight to the output; with several, each chunk's share of the mean goes to plane
// `chunk` of a scratch buffer and shaders/split_reduce.wgsl adds them up.

// include: flat_index

struct GlobalAvgPoolParams {
    planes: u32,
    spatial: u32,
    chunk: u32,
    chunks: u32,
}

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: GlobalAvgPoolParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.planes * p.chunks) {
        return;
    }
    // Chunk-major, so that chunk k of every plane is plane k of the scratch buffer.
    let plane = i % p.planes;
    let chunk = i / p.planes;
    let first = chunk * p.chunk;
    let count = min(p.chunk, p.spatial - first);
    let base = plane * p.spatial + first;
    var sum = vec4<f32>(0.0);
    for (var k = 0u; k < count; k++) {
        sum += input[base + k];
    }
    output[i] = sum / f32(p.spatial);
}
