// Training batch norm backward, step 1: one workgroup per channel sums dbeta = sum(dy) and
// dgamma = sum(dy * xhat) over (image, pixel), straight into the gradient buffer.

// include: train_batch_norm

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> saved: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;
@group(0) @binding(4) var<uniform> p: TrainBatchNormParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let m = p.batch * p.spatial;
    let mean = saved[p.stats_offset + c];
    let inv_std = saved[p.stats_offset + p.channels + c];
    var d_beta = 0.0;
    var d_gamma = 0.0;
    for (var j = lid; j < m; j += WORKGROUP) {
        let at = channel_value(j, c);
        d_beta += dy[at];
        d_gamma += dy[at] * (x[at] - mean) * inv_std;
    }
    let beta_total = workgroup_sum(lid, d_beta);
    let gamma_total = workgroup_sum(lid, d_gamma);
    if (lid == 0u) {
        grads[p.beta_offset + c] = beta_total;
        grads[p.gamma_offset + c] = gamma_total;
    }
}
