// Training: the forward convolution (groups = 1, no bias: a BN always follows) on plain NCHW
// activations, reading its OIHW weights from the flat parameter buffer at `weight_offset`, so the
// optimizer's in-place update is what the next step reads. Each invocation computes a register
// block of 4 output channels x 4 consecutive output pixels of one image: every input value loaded
// is used 4 times and every weight 4 times.

// include: flat_index
// include: train_conv

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainConvParams;

// Input channel `c` of image `n` at (y, x), 0 in the padding.
fn load_input(n: u32, c: u32, y: i32, x: i32) -> f32 {
    if (y < 0 || x < 0 || y >= i32(p.in_h) || x >= i32(p.in_w)) {
        return 0.0;
    }
    return input[((n * p.in_c + c) * p.in_h + u32(y)) * p.in_w + u32(x)];
}

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
    let k_len = p.in_c * p.kernel_h * p.kernel_w;
    let w_base = vec4<u32>(p.weight_offset) + o * k_len;

    // acc[j] = pixel j, its components the 4 output channels.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var k = 0u;
    for (var c = 0u; c < p.in_c; c++) {
        for (var ky = 0; ky < i32(p.kernel_h); ky++) {
            for (var kx = 0; kx < i32(p.kernel_w); kx++) {
                let w = vec4<f32>(weights[w_base.x + k], weights[w_base.y + k], weights[w_base.z + k], weights[w_base.w + k]);
                k++;
                acc0 += load_input(n, c, y0.x + ky, x0.x + kx) * w;
                acc1 += load_input(n, c, y0.y + ky, x0.y + kx) * w;
                acc2 += load_input(n, c, y0.z + ky, x0.z + kx) * w;
                acc3 += load_input(n, c, y0.w + ky, x0.w + kx) * w;
            }
        }
    }
    store(n, block * 4u, ob, acc0);
    store(n, block * 4u + 1u, ob, acc1);
    store(n, block * 4u + 2u, ob, acc2);
    store(n, block * 4u + 3u, ob, acc3);
}
