// Training batch norm backward, step 2: the input gradient through the batch statistics,
// dx = gamma / sqrt(var + eps) * (dy - (dbeta + xhat * dgamma) / m), one invocation per value;
// with ACCUMULATE added to dx.

// include: flat_index
// include: train_batch_norm

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> saved: array<f32>;
@group(0) @binding(4) var<storage, read> grads: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> p: TrainBatchNormParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.batch * p.channels * p.spatial) {
        return;
    }
    let c = (i / p.spatial) % p.channels;
    let m = f32(p.batch * p.spatial);
    let inv_std = saved[p.stats_offset + p.channels + c];
    let xhat = (x[i] - saved[p.stats_offset + c]) * inv_std;
    let d_beta = grads[p.beta_offset + c];
    let d_gamma = grads[p.gamma_offset + c];
    var v = weights[p.gamma_offset + c] * inv_std * (dy[i] - (d_beta + xhat * d_gamma) / m);
    if ((p.flags & ACCUMULATE) != 0u) {
        v += dx[i];
    }
    dx[i] = v;
}
