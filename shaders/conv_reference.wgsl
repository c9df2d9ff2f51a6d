// Reference 2-D convolution (groups = 1): a plain direct loop, kept simple and obviously correct;
// the tuned kernels (see src/ops/conv/wgsl.rs) are tested and benchmarked against it. Each
// invocation computes one block of 4 output channels x 4 consecutive output pixels of one image.
// Activations are channel-blocked (see src/ops/layout.rs): one vec4 = 4 channels of one pixel.
// Weights are packed at load time as [in_c * kernel_h * kernel_w][out_c4] vec4s (4 output
// channels each, zero past out_c); bias as out_c4 vec4s (zero if the conv has none).
// Epilogue: + bias, then the shared epilogue (+ residual, ReLU; fragments/epilogue.wgsl).

// include: flat_index
// include: layout
// include: epilogue

struct ConvReferenceParams {
    batch: u32,
    in_c: u32,
    in_h: u32,
    in_w: u32,
    out_c: u32,
    out_h: u32,
    out_w: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    out_c4: u32,
    flags: u32,
    pixel_blocks: u32,
}

const PIXELS: u32 = 4u;

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> p: ConvReferenceParams;

// Input channel `ic` of image `n` at (y, x), 0 outside the image.
fn load_input(n: u32, ic: u32, y: i32, x: i32) -> f32 {
    if (y < 0 || x < 0 || y >= i32(p.in_h) || x >= i32(p.in_w)) {
        return 0.0;
    }
    let in_c4 = (p.in_c + 3u) / 4u;
    let block = (n * in_c4 + ic / 4u) * p.in_h * p.in_w;
    return input[(block + u32(y) * p.in_w + u32(x)) * 4u + ic % 4u];
}

fn store(n: u32, pixel: u32, oc4: u32, acc: vec4<f32>) {
    let out_hw = p.out_h * p.out_w;
    if (pixel >= out_hw) {
        return;
    }
    epilogue(blocked_index(n, oc4, p.out_c4, out_hw, pixel), acc + bias[oc4], p.flags);
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = flat_index(gid, groups);
    if (index >= p.pixel_blocks * p.out_c4 * p.batch) {
        return;
    }
    let block = index % p.pixel_blocks;
    let rest = index / p.pixel_blocks;
    let oc4 = rest % p.out_c4;
    let n = rest / p.out_c4;

    // Top-left input corner of each of the 4 pixels; pixels past the end repeat the last one.
    let out_hw = p.out_h * p.out_w;
    let first = block * PIXELS;
    let last = out_hw - 1u;
    let q0 = min(first, last);
    let q1 = min(first + 1u, last);
    let q2 = min(first + 2u, last);
    let q3 = min(first + 3u, last);
    let sh = i32(p.stride_h);
    let sw = i32(p.stride_w);
    let pt = i32(p.pad_top);
    let pl = i32(p.pad_left);
    let y0 = i32(q0 / p.out_w) * sh - pt;
    let x0 = i32(q0 % p.out_w) * sw - pl;
    let y1 = i32(q1 / p.out_w) * sh - pt;
    let x1 = i32(q1 % p.out_w) * sw - pl;
    let y2 = i32(q2 / p.out_w) * sh - pt;
    let x2 = i32(q2 % p.out_w) * sw - pl;
    let y3 = i32(q3 / p.out_w) * sh - pt;
    let x3 = i32(q3 % p.out_w) * sw - pl;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var w_index = oc4;
    for (var ic = 0u; ic < p.in_c; ic++) {
        for (var ky = 0; ky < i32(p.kernel_h); ky++) {
            for (var kx = 0; kx < i32(p.kernel_w); kx++) {
                let w = weight[w_index];
                w_index += p.out_c4;
                acc0 += load_input(n, ic, y0 + ky, x0 + kx) * w;
                acc1 += load_input(n, ic, y1 + ky, x1 + kx) * w;
                acc2 += load_input(n, ic, y2 + ky, x2 + kx) * w;
                acc3 += load_input(n, ic, y3 + ky, x3 + kx) * w;
            }
        }
    }
    store(n, first, oc4, acc0);
    store(n, first + 1u, oc4, acc1);
    store(n, first + 2u, oc4, acc2);
    store(n, first + 3u, oc4, acc3);
}
