// Softmax over each image's activation (channel-blocked layout, `blocks` x `spatial` vec4s), one
// invocation per image (rows are short). Padding channels (>= `channels`) are skipped and left 0.

// include: flat_index

struct SoftmaxParams {
    rows: u32,
    channels: u32,
    blocks: u32,
    spatial: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<f32>;
@group(0) @binding(2) var<uniform> p: SoftmaxParams;

fn valid(j: u32) -> bool {
    return (j / (4u * p.spatial)) * 4u + j % 4u < p.channels;
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = flat_index(gid, groups);
    if (row >= p.rows) {
        return;
    }
    let len = p.blocks * p.spatial * 4u;
    let base = row * len;
    var m = -3.402823e38;
    for (var j = 0u; j < len; j++) {
        if (valid(j)) {
            m = max(m, input[base + j]);
        }
    }
    var sum = 0.0;
    for (var j = 0u; j < len; j++) {
        var e = 0.0;
        if (valid(j)) {
            e = exp(input[base + j] - m);
        }
        output[base + j] = e;
        sum += e;
    }
    for (var j = 0u; j < len; j++) {
        output[base + j] = output[base + j] / sum;
    }
}
