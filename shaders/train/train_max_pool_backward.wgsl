// Training: the gradient through max pooling, one invocation per input value: it gathers dy from
// every window that covers it and in which it is the first maximum in row-major window order
// (PyTorch's rule for ties), recomputing each window's winner instead of storing indices. Loops
// run over the few windows that cover a pixel and their kernel_h x kernel_w taps.

// include: flat_index
// include: train_pool

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainPoolParams;

// The flat in-plane index of window (oy, ox)'s first maximum.
fn winner(base: u32, oy: u32, ox: u32) -> u32 {
    var best = -3.402823e38;
    var at = 0xffffffffu;
    for (var ky = 0u; ky < p.kernel_h; ky++) {
        let iy = i32(oy * p.stride_h + ky) - i32(p.pad_top);
        for (var kx = 0u; kx < p.kernel_w; kx++) {
            let ix = i32(ox * p.stride_w + kx) - i32(p.pad_left);
            if (iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w)) {
                let q = u32(iy) * p.in_w + u32(ix);
                let v = x[base + q];
                if (at == 0xffffffffu || v > best) {
                    best = v;
                    at = q;
                }
            }
        }
    }
    return at;
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let in_hw = p.in_h * p.in_w;
    if (i >= p.batch * p.in_c * in_hw) {
        return;
    }
    let plane = i / in_hw;
    let q = i % in_hw;
    let iy = i32(q / p.in_w) + i32(p.pad_top);
    let ix = i32(q % p.in_w) + i32(p.pad_left);
    // Windows oy with oy * stride <= iy + pad < oy * stride + kernel.
    let oy_first = max(iy - i32(p.kernel_h) + i32(p.stride_h), 0) / i32(p.stride_h);
    let oy_last = min(iy / i32(p.stride_h), i32(p.out_h) - 1);
    let ox_first = max(ix - i32(p.kernel_w) + i32(p.stride_w), 0) / i32(p.stride_w);
    let ox_last = min(ix / i32(p.stride_w), i32(p.out_w) - 1);
    var sum = 0.0;
    for (var oy = oy_first; oy <= oy_last; oy++) {
        for (var ox = ox_first; ox <= ox_last; ox++) {
            if (winner(plane * in_hw, u32(oy), u32(ox)) == q) {
                sum += dy[(plane * p.out_h + u32(oy)) * p.out_w + u32(ox)];
            }
        }
    }
    if ((p.flags & ACCUMULATE) != 0u) {
        sum += dx[i];
    }
    dx[i] = sum;
}
