// Training: the gradient of a convolution's input, dx = the transposed convolution of dy with the
// OIHW weights. Each invocation computes 4 input channels x 4 consecutive input pixels of one
// image. The taps (ky, kx) are the outer loop: for each, every pixel's output position (the one
// that read it through that tap: with stride 2 only where iy + pad - ky is a multiple of the
// stride) is worked out once, and the inner loop over output channels only loads and
// multiplies. With ACCUMULATE the result is added to dx (a value read by several layers gets the
// sum of their gradients).

// include: flat_index
// include: train_conv

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainConvParams;

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

// The output coordinate that reads input offset t (= input coordinate + pad - tap) along an
// axis of `stride`...
fn source(t: vec4<i32>, stride: u32) -> vec4<u32> {
    return vec4<u32>(max(t, vec4<i32>(0))) / stride;
}

// ... and whether there is one, on an output axis of `size`.
fn reads(t: vec4<i32>, stride: u32, size: u32) -> vec4<bool> {
    let u = vec4<u32>(max(t, vec4<i32>(0)));
    return (t >= vec4<i32>(0)) & ((u % stride) == vec4<u32>(0u)) & ((u / stride) < vec4<u32>(size));
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let in_hw = p.in_h * p.in_w;
    let out_hw = p.out_h * p.out_w;
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
    let o_stride = p.in_c * khw;
    let image = n * p.out_c * out_hw;

    // acc[j] = pixel j, its components the 4 input channels.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kernel_h; ky++) {
        for (var kx = 0u; kx < p.kernel_w; kx++) {
            let ty = ty0 - i32(ky);
            let tx = tx0 - i32(kx);
            let valid = reads(ty, p.stride_h, p.out_h) & reads(tx, p.stride_w, p.out_w);
            if (!any(valid)) {
                continue;
            }
            let at = source(ty, p.stride_h) * p.out_w + source(tx, p.stride_w);
            // Positions no output reads load element 0 and multiply it by 0 (arithmetic, not an
            // integer select: GLSL 4.30 has no integer mix without an extension).
            var dy_at = at * vec4<u32>(valid) + image;
            let keep = vec4<f32>(valid);
            var w_at = vec4<u32>(p.weight_offset) + c * khw + ky * p.kernel_w + kx;
            for (var o = 0u; o < p.out_c; o++) {
                let w = vec4<f32>(weights[w_at.x], weights[w_at.y], weights[w_at.z], weights[w_at.w]);
                let d = vec4<f32>(dy[dy_at.x], dy[dy_at.y], dy[dy_at.z], dy[dy_at.w]) * keep;
                acc0 += d.x * w;
                acc1 += d.y * w;
                acc2 += d.z * w;
                acc3 += d.w * w;
                w_at += vec4<u32>(o_stride);
                dy_at += vec4<u32>(out_hw);
            }
        }
    }
    store(n, block * 4u, cb, acc0);
    store(n, block * 4u + 1u, cb, acc1);
    store(n, block * 4u + 2u, cb, acc2);
    store(n, block * 4u + 3u, cb, acc3);
}
