// The paper's option-A shortcut: every `stride`-th pixel of the input, with zero channels padded
// before (`pad_before`) and after, up to `out_c` channels. Channel-blocked layout on both sides;
// one invocation per output vec4 (the channel shift need not be a multiple of 4, so the 4 lanes
// are gathered one by one).

// include: flat_index

struct ShortcutAParams {
    batch: u32,
    in_c: u32,
    in_h: u32,
    in_w: u32,
    out_c: u32,
    out_h: u32,
    out_w: u32,
    stride: u32,
    pad_before: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: ShortcutAParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let out_hw = p.out_h * p.out_w;
    let out_c4 = (p.out_c + 3u) / 4u;
    let in_c4 = (p.in_c + 3u) / 4u;
    if (i >= p.batch * out_c4 * out_hw) {
        return;
    }
    let pixel = i % out_hw;
    let oc4 = (i / out_hw) % out_c4;
    let n = i / (out_hw * out_c4);
    let y = (pixel / p.out_w) * p.stride;
    let x = (pixel % p.out_w) * p.stride;
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) {
        let oc = oc4 * 4u + k;
        if (oc >= p.pad_before && oc < p.pad_before + p.in_c) {
            let ic = oc - p.pad_before;
            v[k] = input[(((n * in_c4 + ic / 4u) * p.in_h + y) * p.in_w + x) * 4u + ic % 4u];
        }
    }
    output[i] = v;
}
