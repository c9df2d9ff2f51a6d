//! The hyper-parameters of one SGD step, in PyTorch's conventions.

/// SGD with momentum and weight decay, and batch norm's running-statistics momentum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    /// Learning rate (the schedule changes it between steps).
    pub lr: f32,
    /// Momentum: v = momentum * v + g, w -= lr * v (no dampening, no Nesterov).
    pub momentum: f32,
    /// Added to every parameter's gradient as weight_decay * w (conv, BN, fc alike).
    pub weight_decay: f32,
    /// Batch norm: running = (1 - bn_momentum) * running + bn_momentum * batch statistic.
    pub bn_momentum: f32,
}

impl Default for Hyper {
    /// The paper's CIFAR recipe: lr 0.1, momentum 0.9, weight decay 1e-4; PyTorch's BN momentum.
    fn default() -> Self {
        Self {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
            bn_momentum: 0.1,
        }
    }
}
