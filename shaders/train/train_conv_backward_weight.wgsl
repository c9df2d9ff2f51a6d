// Training: the gradient of a convolution's OIHW weights, dw[o][c][ky][kx] = sum over (image,
// output pixel) of dy[o] * the input value of channel c that tap (ky, kx) read there. That sum
// runs over batch x out_h x out_w terms (131,072 for ResNet-20 at batch 128): more than one
// invocation may loop over (Mesa stops any loop after 65,535 iterations), so it is split into
// `chunks` of at most `chunk` terms. Each invocation computes 4 output channels x 4 input
// channels of one tap for one chunk, so each term needs one bounds check; with one chunk it
// writes the gradient buffer at `grad_offset`, otherwise chunk c's partial sums go to plane c of
// a scratch buffer that train_sum_chunks adds up.

// include: flat_index
// include: train_conv

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainConvParams;

// Output channel `oc`'s weights of tap `tap` for the 4 input channels of block `cb`, from `base`.
fn store(base: u32, oc: u32, cb: u32, tap: u32, v: vec4<f32>) {
    let khw = p.kernel_h * p.kernel_w;
    for (var j = 0u; j < 4u; j++) {
        let c = cb * 4u + j;
        if (oc < p.out_c && c < p.in_c) {
            output[base + (oc * p.in_c + c) * khw + tap] = v[j];
        }
    }
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let khw = p.kernel_h * p.kernel_w;
    let in_c4 = (p.in_c + 3u) / 4u;
    let k_blocks = in_c4 * khw;
    let out_c4 = (p.out_c + 3u) / 4u;
    let i = flat_index(gid, groups);
    if (i >= p.chunks * out_c4 * k_blocks) {
        return;
    }
    let kb = i % k_blocks;
    let ob = (i / k_blocks) % out_c4;
    let chunk = i / (k_blocks * out_c4);
    let tap = kb % khw;
    let cb = kb / khw;
    let ky = i32(tap / p.kernel_w) - i32(p.pad_top);
    let kx = i32(tap % p.kernel_w) - i32(p.pad_left);

    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    let c = min(vec4<u32>(cb * 4u) + lanes, vec4<u32>(p.in_c - 1u));
    let o = min(vec4<u32>(ob * 4u) + lanes, vec4<u32>(p.out_c - 1u));
    let in_hw = p.in_h * p.in_w;
    let out_hw = p.out_h * p.out_w;
    let first = chunk * p.chunk;
    let count = min(p.chunk, p.batch * out_hw - first);
    var n = first / out_hw;
    var oy = (first % out_hw) / p.out_w;
    var ox = first % p.out_w;
    // acc[l] = output channel l, its components the 4 input channels.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var t = 0u; t < count; t++) {
        let y = i32(oy * p.stride_h) + ky;
        let x = i32(ox * p.stride_w) + kx;
        if (y >= 0 && x >= 0 && y < i32(p.in_h) && x < i32(p.in_w)) {
            let d_at = vec4<u32>(n * p.out_c * out_hw + oy * p.out_w + ox) + o * out_hw;
            let d = vec4<f32>(dy[d_at.x], dy[d_at.y], dy[d_at.z], dy[d_at.w]);
            let x_at = vec4<u32>(n * p.in_c * in_hw + u32(y) * p.in_w + u32(x)) + c * in_hw;
            let v = vec4<f32>(input[x_at.x], input[x_at.y], input[x_at.z], input[x_at.w]);
            acc0 += d.x * v;
            acc1 += d.y * v;
            acc2 += d.z * v;
            acc3 += d.w * v;
        }
        ox++;
        if (ox == p.out_w) {
            ox = 0u;
            oy++;
            if (oy == p.out_h) {
                oy = 0u;
                n++;
            }
        }
    }
    var base = p.grad_offset;
    if (p.chunks > 1u) {
        base = chunk * p.out_c * p.in_c * khw;
    }
    store(base, ob * 4u, cb, tap, acc0);
    store(base, ob * 4u + 1u, cb, tap, acc1);
    store(base, ob * 4u + 2u, cb, tap, acc2);
    store(base, ob * 4u + 3u, cb, tap, acc3);
}
