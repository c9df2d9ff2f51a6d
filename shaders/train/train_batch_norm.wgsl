// Training batch norm, step 2: y = (x - mean) / sqrt(var + eps) * gamma + beta with the batch
// statistics train_batch_norm_stats saved, one invocation per value.

// include: flat_index
// include: train_batch_norm

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> saved: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: TrainBatchNormParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.batch * p.channels * p.spatial) {
        return;
    }
    let c = (i / p.spatial) % p.channels;
    let xhat = (x[i] - saved[p.stats_offset + c]) * saved[p.stats_offset + p.channels + c];
    y[i] = xhat * weights[p.gamma_offset + c] + weights[p.beta_offset + c];
}
