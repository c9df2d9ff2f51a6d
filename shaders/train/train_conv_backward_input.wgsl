// Training: the gradient of a convolution's input, dx = the transposed convolution of dy with the
// OIHW weights. Each invocation computes 4 input channels x 4 consecutive input pixels of one
// image, gathering over (output channel, ky, kx) the output positions that read each pixel (with
// stride 2, only those where iy + pad - ky is a multiple of the stride). With ACCUMULATE the
// result is added to dx (a value read by several layers gets the sum of their gradients).

// include: flat_index
// include: train_conv

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainConvParams;

// dy of output channel `o` of image `n` at the output position that reads input offset (ty, tx)
// = (iy + pad - ky, ix + pad - kx), 0 where no output position does.
fn load_dy(n: u32, o: u32, ty: i32, tx: i32) -> f32 {
    if (ty < 0 || tx < 0) {
        return 0.0;
    }
    let sy = u32(ty);
    let sx = u32(tx);
    if (sy % p.stride_h != 0u || sx % p.stride_w != 0u) {
        return 0.0;
    }
    let oy = sy / p.stride_h;
    let ox = sx / p.stride_w;
    if (oy >= p.out_h || ox >= p.out_w) {
        return 0.0;
    }
    return dy[((n * p.out_c + o) * p.out_h + oy) * p.out_w + ox];
}

// Input pixel `pixel` of image `n` for the 4 channels of block `cb`, added with ACCUMULATE.
fn store(n: u32, pixel: u32, cb: u32, v: vec4<f32>) {
    let in_hw = p.in_h * p.in_w;
    for (var l = 0u; l < 4u; l++) {
        let ch = cb * 4u + l;
        if (pixel < in_hw && ch < p.in_c) {
            let at = (n * p.in_c + ch) * in_hw + pixel;
            var total = v[l];
            if ((p.flags & ACCUMULATE) != 0u) {
                total += dx[at];
            }
            dx[at] = total;
        }
    }
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let in_hw = p.in_h * p.in_w;
    let pixel_blocks = (in_hw + 3u) / 4u;
    let in_c4 = (p.in_c + 3u) / 4u;
    let i = flat_index(gid, groups);
    if (i >= p.batch * in_c4 * pixel_blocks) {
        return;
    }
    let block = i % pixel_blocks;
    let cb = (i / pixel_blocks) % in_c4;
    let n = i / (pixel_blocks * in_c4);

    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    let q = min(vec4<u32>(block * 4u) + lanes, vec4<u32>(in_hw - 1u));
    let ty0 = vec4<i32>(q / p.in_w) + i32(p.pad_top);
    let tx0 = vec4<i32>(q % p.in_w) + i32(p.pad_left);
    let c = min(vec4<u32>(cb * 4u) + lanes, vec4<u32>(p.in_c - 1u));
    let khw = p.kernel_h * p.kernel_w;

    // acc[j] = pixel j, its components the 4 input channels.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var o = 0u; o < p.out_c; o++) {
        let w_base = vec4<u32>(p.weight_offset) + (vec4<u32>(o * p.in_c) + c) * khw;
        var k = 0u;
        for (var ky = 0; ky < i32(p.kernel_h); ky++) {
            for (var kx = 0; kx < i32(p.kernel_w); kx++) {
                let w = vec4<f32>(weights[w_base.x + k], weights[w_base.y + k], weights[w_base.z + k], weights[w_base.w + k]);
                k++;
                acc0 += load_dy(n, o, ty0.x - ky, tx0.x - kx) * w;
                acc1 += load_dy(n, o, ty0.y - ky, tx0.y - kx) * w;
                acc2 += load_dy(n, o, ty0.z - ky, tx0.z - kx) * w;
                acc3 += load_dy(n, o, ty0.w - ky, tx0.w - kx) * w;
            }
        }
    }
    store(n, block * 4u, cb, acc0);
    store(n, block * 4u + 1u, cb, acc1);
    store(n, block * 4u + 2u, cb, acc2);
    store(n, block * 4u + 3u, cb, acc3);
}
