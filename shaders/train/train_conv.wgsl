// Training: the forward convolution (groups = 1, no bias: a BN always follows) on plain NCHW
// activations, reading its OIHW weights from the flat parameter buffer at `weight_offset`, so the
// optimizer's in-place update is what the next step reads. Each invocation computes a register
// block of 4 output channels x 4 consecutive output pixels of one image: every input value loaded
// is used 4 times and every weight 4 times. The taps (ky, kx) are the outer loop, so where each
// pixel reads and whether it falls in the padding is worked out once per tap, not once per
// input channel; the inner loop over input channels only loads and multiplies.

// include: flat_index
// include: train_conv

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainConvParams;

// Output pixel `pixel` of image `n` for the 4 channels of block `ob` (those that exist).
fn store(n: u32, pixel: u32, ob: u32, v: vec4<f32>) {
    let out_hw = p.out_h * p.out_w;
    for (var l = 0u; l < 4u; l++) {
        let oc = ob * 4u + l;
        if (pixel < out_hw && oc < p.out_c) {
            output[(n * p.out_c + oc) * out_hw + pixel] = v[l];
        }
    }
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let out_hw = p.out_h * p.out_w;
    let in_hw = p.in_h * p.in_w;
    let pixel_blocks = (out_hw + 3u) / 4u;
    let out_c4 = (p.out_c + 3u) / 4u;
    let i = flat_index(gid, groups);
    if (i >= p.batch * out_c4 * pixel_blocks) {
        return;
    }
    let block = i % pixel_blocks;
    let ob = (i / pixel_blocks) % out_c4;
    let n = i / (pixel_blocks * out_c4);

    // The block's pixels and channels; past the end they repeat the last one (not stored).
    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    let q = min(vec4<u32>(block * 4u) + lanes, vec4<u32>(out_hw - 1u));
    let y0 = vec4<i32>((q / p.out_w) * p.stride_h) - i32(p.pad_top);
    let x0 = vec4<i32>((q % p.out_w) * p.stride_w) - i32(p.pad_left);
    let o = min(vec4<u32>(ob * 4u) + lanes, vec4<u32>(p.out_c - 1u));
    let khw = p.kernel_h * p.kernel_w;
    let k_len = p.in_c * khw;
    let w_first = vec4<u32>(p.weight_offset) + o * k_len;
    let image = n * p.in_c * in_hw;

    // acc[j] = pixel j, its components the 4 output channels.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kernel_h; ky++) {
        for (var kx = 0u; kx < p.kernel_w; kx++) {
            let y = y0 + i32(ky);
            let x = x0 + i32(kx);
            let inside = (y >= vec4<i32>(0)) & (y < vec4<i32>(i32(p.in_h))) & (x >= vec4<i32>(0)) & (x < vec4<i32>(i32(p.in_w)));
            // Padding reads element 0 and multiplies it by 0 (arithmetic, not an integer
            // select: GLSL 4.30 has no integer mix without an extension).
            let at = (vec4<u32>(y) * p.in_w + vec4<u32>(x)) * vec4<u32>(inside) + image;
            let keep = vec4<f32>(inside);
            var w_at = w_first + ky * p.kernel_w + kx;
            var x_at = at;
            for (var c = 0u; c < p.in_c; c++) {
                let w = vec4<f32>(weights[w_at.x], weights[w_at.y], weights[w_at.z], weights[w_at.w]);
                let v = vec4<f32>(input[x_at.x], input[x_at.y], input[x_at.z], input[x_at.w]) * keep;
                acc0 += v.x * w;
                acc1 += v.y * w;
                acc2 += v.z * w;
                acc3 += v.w * w;
                w_at += vec4<u32>(khw);
                x_at += vec4<u32>(in_hw);
            }
        }
    }
    store(n, block * 4u, ob, acc0);
    store(n, block * 4u + 1u, ob, acc1);
    store(n, block * 4u + 2u, ob, acc2);
    store(n, block * 4u + 3u, ob, acc3);
}
