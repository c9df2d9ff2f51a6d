// The paper's option-A shortcut: every `stride`-th pixel of the input, with zero channels padded
// before (`pad_before`) and after, up to `out_c` channels. One invocation per output value.

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
@group(0) @binding(1) var<storage, read_write> output: array<f32>;
@group(0) @binding(2) var<uniform> p: ShortcutAParams;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    let out_hw = p.out_h * p.out_w;
    if (i >= p.batch * p.out_c * out_hw) {
        return;
    }
    let pixel = i % out_hw;
    let oc = (i / out_hw) % p.out_c;
    let n = i / (out_hw * p.out_c);
    var v = 0.0;
    if (oc >= p.pad_before && oc < p.pad_before + p.in_c) {
        let ic = oc - p.pad_before;
        let y = (pixel / p.out_w) * p.stride;
        let x = (pixel % p.out_w) * p.stride;
        v = input[((n * p.in_c + ic) * p.in_h + y) * p.in_w + x];
    }
    output[i] = v;
}
