// Fully connected layer, y = x W^T + b. The input is one image's whole activation in the
// channel-blocked layout (`in_len4` vec4s, padding included); W was reordered at load time to
// that same order, with zero columns for padding channels, so this is a plain dot product. Output
// (out, 1, 1) blocked is just `out_len` = out rounded up to 4 floats; the padding is written 0.
// One invocation per (chunk, image, output): it sums at most `chunk4` vec4s of the dot product,
// so no invocation loops long (Mesa's llvmpipe silently stops a shader's loops after 65,535
// iterations in all: a K = 270,400 layer once summed only 262,140 of its terms). With one chunk
// the sum + bias goes to the output; with several, each chunk's partial sum goes to plane `chunk`
// of a scratch buffer, and shaders/split_reduce.wgsl adds them up with the bias.

// include: flat_index

struct LinearParams {
    batch: u32,
    in_len4: u32,
    out_features: u32,
    out_len: u32,
    chunk4: u32,
    chunks: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;
@group(0) @binding(4) var<uniform> p: LinearParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let per_chunk = p.batch * p.out_len;
    if (i >= per_chunk * p.chunks) {
        return;
    }
    let o = i % p.out_len;
    let n = (i / p.out_len) % p.batch;
    let chunk = i / per_chunk;
    if (o >= p.out_features) {
        output[i] = 0.0;
        return;
    }
    let first = chunk * p.chunk4;
    let count = min(p.chunk4, p.in_len4 - first);
    let x_base = n * p.in_len4 + first;
    let w_base = o * p.in_len4 + first;
    var sum = vec4<f32>(0.0);
    for (var k = 0u; k < count; k++) {
        sum += input[x_base + k] * weight[w_base + k];
    }
    var total = sum.x + sum.y + sum.z + sum.w;
    if (p.chunks == 1u) {
        total += bias[o];
    }
    output[i] = total;
}
