//! The paper's learning-rate schedule (sec. 4.2): 0.1, divided by 10 at half and at three
//! quarters of training (32k and 48k of 64k iterations), and for ResNet-110 and deeper a warm-up
//! at 0.01 until training error falls below 80% (about 400 iterations), taken here as a fixed
//! number of iterations.

/// The learning rate of every iteration of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// The rate after warm-up, before the first division.
    pub base_lr: f32,
    /// Iterations in all.
    pub total: u64,
    /// Iterations at 0.01 first (0: none).
    pub warmup: u64,
}

impl Schedule {
    /// The paper's schedule over `total` iterations; `depth` >= 110 gets the warm-up.
    pub fn paper(base_lr: f32, total: u64, depth: usize) -> Self {
        let warmup = if depth >= 110 { 400.min(total / 10) } else { 0 };
        Self {
            base_lr,
            total,
            warmup,
        }
    }

    /// The learning rate of iteration `step` (counting from 0).
    pub fn lr(&self, step: u64) -> f32 {
        if step < self.warmup {
            return self.base_lr.min(0.01);
        }
        // Integer thresholds: 32k and 48k of 64k exactly.
        if step * 4 >= self.total * 3 {
            self.base_lr / 100.0
        } else if step * 2 >= self.total {
            self.base_lr / 10.0
        } else {
            self.base_lr
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_divides_at_32k_and_48k_of_64k() {
        let s = Schedule::paper(0.1, 64_000, 56);
        assert_eq!(s.lr(0), 0.1);
        assert_eq!(s.lr(31_999), 0.1);
        assert_eq!(s.lr(32_000), 0.01);
        assert_eq!(s.lr(47_999), 0.01);
        assert!((s.lr(48_000) - 0.001).abs() < 1e-9);
    }

    #[test]
    fn resnet110_warms_up_at_0_01() {
        let s = Schedule::paper(0.1, 64_000, 110);
        assert_eq!(s.lr(0), 0.01);
        assert_eq!(s.lr(399), 0.01);
        assert_eq!(s.lr(400), 0.1);
        assert_eq!(Schedule::paper(0.1, 64_000, 56).warmup, 0);
    }
}
