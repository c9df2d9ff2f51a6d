// Training: max pooling on plain NCHW values, one invocation per output value. Padding never
// wins; a NaN in the window makes the output NaN (as in inference).

// include: flat_index
// include: relu
// include: train_pool

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: TrainPoolParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let out_hw = p.out_h * p.out_w;
    if (i >= p.batch * p.in_c * out_hw) {
        return;
    }
    let plane = i / out_hw;
    let oy = (i % out_hw) / p.out_w;
    let ox = i % p.out_w;
    let base = plane * p.in_h * p.in_w;
    var m = vec4<f32>(-3.402823e38);
    for (var ky = 0u; ky < p.kernel_h; ky++) {
        let iy = i32(oy * p.stride_h + ky) - i32(p.pad_top);
        for (var kx = 0u; kx < p.kernel_w; kx++) {
            let ix = i32(ox * p.stride_w + kx) - i32(p.pad_left);
            if (iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w)) {
                m = max4(m, vec4<f32>(x[base + u32(iy) * p.in_w + u32(ix)]));
            }
        }
    }
    y[i] = m.x;
}
