// Training batch norm, step 1: one workgroup per channel computes the batch mean and the biased
// variance over (image, pixel) in two passes (mean first, then the squared deviations: no
// cancellation), saves mean and 1/sqrt(var + eps) for the normalisation and the backward pass,
// and updates the running statistics as PyTorch does: running = (1 - momentum) running +
// momentum batch, the running variance from the unbiased batch variance (m / (m - 1)). Each
// invocation loops over m / WORKGROUP values, under Mesa's 65,535-iteration cap (the host checks).

// include: train_batch_norm

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> saved: array<f32>;
@group(0) @binding(2) var<storage, read_write> running: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainBatchNormParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let m = p.batch * p.spatial;
    var sum = 0.0;
    for (var j = lid; j < m; j += WORKGROUP) {
        sum += x[channel_value(j, c)];
    }
    let mean = workgroup_sum(lid, sum) / f32(m);
    var squares = 0.0;
    for (var j = lid; j < m; j += WORKGROUP) {
        let d = x[channel_value(j, c)] - mean;
        squares += d * d;
    }
    let variance = workgroup_sum(lid, squares) / f32(m);
    if (lid == 0u) {
        let mean_at = p.stats_offset + c;
        let var_at = mean_at + p.channels;
        saved[mean_at] = mean;
        saved[var_at] = 1.0 / sqrt(variance + p.eps);
        let unbiased = variance * f32(m) / f32(max(m, 2u) - 1u);
        running[mean_at] = (1.0 - p.momentum) * running[mean_at] + p.momentum * mean;
        running[var_at] = (1.0 - p.momentum) * running[var_at] + p.momentum * unbiased;
    }
}
