// Training: the gradient of a convolution's OIHW weights, dw[o][k] = sum over (image, output
// pixel) of dy[o] * the input value tap k = (c, ky, kx) read there. That sum runs over
// batch x out_h x out_w terms (131,072 for ResNet-20 at batch 128): more than one invocation may
// loop over (Mesa stops any loop after 65,535 iterations), so it is split into `chunks` of at
// most `chunk` terms. Each invocation computes 4 output channels x 4 taps of one chunk; with one
// chunk it writes the gradient buffer at `grad_offset`, otherwise chunk c's partial sums go to
// plane c of a scratch buffer that train_sum_chunks adds up.

// include: flat_index
// include: train_conv

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainConvParams;

fn load_input(n: u32, c: u32, y: i32, x: i32) -> f32 {
    if (y < 0 || x < 0 || y >= i32(p.in_h) || x >= i32(p.in_w)) {
        return 0.0;
    }
    return input[((n * p.in_c + c) * p.in_h + u32(y)) * p.in_w + u32(x)];
}

// Output channel `oc`'s 4 taps of block `kb` (those that exist), from `base`.
fn store(base: u32, oc: u32, kb: u32, v: vec4<f32>) {
    let k_len = p.in_c * p.kernel_h * p.kernel_w;
    for (var j = 0u; j < 4u; j++) {
        let tap = kb * 4u + j;
        if (oc < p.out_c && tap < k_len) {
            output[base + oc * k_len + tap] = v[j];
        }
    }
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let khw = p.kernel_h * p.kernel_w;
    let k_len = p.in_c * khw;
    let k_blocks = (k_len + 3u) / 4u;
    let out_c4 = (p.out_c + 3u) / 4u;
    let i = flat_index(gid, groups);
    if (i >= p.chunks * out_c4 * k_blocks) {
        return;
    }
    let kb = i % k_blocks;
    let ob = (i / k_blocks) % out_c4;
    let chunk = i / (k_blocks * out_c4);

    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    let k = min(vec4<u32>(kb * 4u) + lanes, vec4<u32>(k_len - 1u));
    let c = k / khw;
    let ky = vec4<i32>((k % khw) / p.kernel_w) - i32(p.pad_top);
    let kx = vec4<i32>(k % p.kernel_w) - i32(p.pad_left);
    let o = min(vec4<u32>(ob * 4u) + lanes, vec4<u32>(p.out_c - 1u));

    let out_hw = p.out_h * p.out_w;
    let first = chunk * p.chunk;
    let count = min(p.chunk, p.batch * out_hw - first);
    var n = first / out_hw;
    var oy = (first % out_hw) / p.out_w;
    var ox = first % p.out_w;
    // acc[l] = output channel l, its components the 4 taps.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var t = 0u; t < count; t++) {
        let at = vec4<u32>(n * p.out_c * out_hw + oy * p.out_w + ox) + o * out_hw;
        let d = vec4<f32>(dy[at.x], dy[at.y], dy[at.z], dy[at.w]);
        let y = i32(oy * p.stride_h) + ky;
        let x = i32(ox * p.stride_w) + kx;
        let v = vec4<f32>(load_input(n, c.x, y.x, x.x), load_input(n, c.y, y.y, x.y), load_input(n, c.z, y.z, x.z), load_input(n, c.w, y.w, x.w));
        acc0 += d.x * v;
        acc1 += d.y * v;
        acc2 += d.z * v;
        acc3 += d.w * v;
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
        base = chunk * p.out_c * k_len;
    }
    store(base, ob * 4u, kb, acc0);
    store(base, ob * 4u + 1u, kb, acc1);
    store(base, ob * 4u + 2u, kb, acc2);
    store(base, ob * 4u + 3u, kb, acc3);
}
