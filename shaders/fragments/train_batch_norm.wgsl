// Training batch norm's params (kernels::train::TrainBatchNormParams), where a channel's values
// lie in NCHW, and the workgroup sum its reductions share. Statistics buffers hold, per BN layer
// at `stats_offset`, `channels` means then `channels` second values (the running variance in the
// running buffer, 1/sqrt(var + eps) of the batch in the saved one).

struct TrainBatchNormParams {
    batch: u32,
    channels: u32,
    spatial: u32,
    gamma_offset: u32,
    beta_offset: u32,
    stats_offset: u32,
    momentum: f32,
    eps: f32,
    flags: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Index of the j-th value of channel c, j counting over (image, pixel).
fn channel_value(j: u32, c: u32) -> u32 {
    let n = j / p.spatial;
    return (n * p.channels + c) * p.spatial + (j - n * p.spatial);
}

var<workgroup> partial: array<f32, WORKGROUP>;

// The sum of every invocation's `v` over the workgroup (call from uniform control flow).
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}
