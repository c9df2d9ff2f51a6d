// Training: the paper's option-A shortcut on plain NCHW values: every stride-th pixel of the
// input, with `pad_before` zero channels before the input's and the rest after, one invocation
// per output value.

// include: flat_index
// include: train_pool

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: TrainPoolParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let out_hw = p.out_h * p.out_w;
    if (i >= p.batch * p.out_c * out_hw) {
        return;
    }
    let n = i / (p.out_c * out_hw);
    let c = (i / out_hw) % p.out_c;
    let oy = (i % out_hw) / p.out_w;
    let ox = i % p.out_w;
    var v = 0.0;
    if (c >= p.pad_before && c - p.pad_before < p.in_c) {
        let ic = c - p.pad_before;
        v = x[((n * p.in_c + ic) * p.in_h + oy * p.stride_h) * p.in_w + ox * p.stride_w];
    }
    y[i] = v;
}
