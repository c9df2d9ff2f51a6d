// Max pooling on the channel-blocked layout, one invocation per output vec4 (4 channels of one
// pixel). Padding never wins (it is -infinity); a NaN in the window makes the output NaN, as in
// PyTorch.

// include: flat_index
// include: relu

struct MaxPoolParams {
    planes: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: MaxPoolParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let out_hw = p.out_h * p.out_w;
    if (i >= p.planes * out_hw) {
        return;
    }
    // A "plane" is one (image, channel block).
    let plane = i / out_hw;
    let oy = (i % out_hw) / p.out_w;
    let ox = i % p.out_w;
    let base = plane * p.in_h * p.in_w;
    var m = vec4<f32>(-3.402823e38);
    for (var ky = 0u; ky < p.kernel_h; ky++) {
        let iy = i32(oy * p.stride_h + ky) - i32(p.pad_top);
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        for (var kx = 0u; kx < p.kernel_w; kx++) {
            let ix = i32(ox * p.stride_w + kx) - i32(p.pad_left);
            if (ix < 0 || ix >= i32(p.in_w)) {
                continue;
            }
            m = max4(m, input[base + u32(iy) * p.in_w + u32(ix)]);
        }
    }
    output[i] = m;
}
