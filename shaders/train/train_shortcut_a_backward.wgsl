// Training: the gradient through the option-A shortcut, one invocation per input value: the
// pixels it kept get the gradient of their output channel, the others none; with ACCUMULATE
// added to dx.

// include: flat_index
// include: train_pool

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<uniform> p: TrainPoolParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let in_hw = p.in_h * p.in_w;
    if (i >= p.batch * p.in_c * in_hw) {
        return;
    }
    let n = i / (p.in_c * in_hw);
    let c = (i / in_hw) % p.in_c;
    let iy = (i % in_hw) / p.in_w;
    let ix = i % p.in_w;
    var v = 0.0;
    if (iy % p.stride_h == 0u && ix % p.stride_w == 0u) {
        let oy = iy / p.stride_h;
        let ox = ix / p.stride_w;
        if (oy < p.out_h && ox < p.out_w) {
            v = dy[((n * p.out_c + c + p.pad_before) * p.out_h + oy) * p.out_w + ox];
        }
    }
    if ((p.flags & ACCUMULATE) != 0u) {
        v += dx[i];
    }
    dx[i] = v;
}
