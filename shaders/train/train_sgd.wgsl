// Training: one SGD step with momentum over every parameter at once (the flat parameter, gradient
// and velocity buffers share offsets), in PyTorch's convention: g = grad + weight_decay * w,
// v = momentum * v + g, w -= lr * v. The gradient buffer is left as it was (tests read it).

// include: flat_index

struct TrainSgdParams {
    len: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
}

@group(0) @binding(0) var<storage, read> grads: array<f32>;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(3) var<uniform> p: TrainSgdParams;

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    if (i >= p.len) {
        return;
    }
    let g = grads[i] + p.weight_decay * weights[i];
    let v = p.momentum * velocity[i] + g;
    velocity[i] = v;
    weights[i] = weights[i] - p.lr * v;
}
