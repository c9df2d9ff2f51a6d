//! Fresh weights for training from scratch, as the paper and the training fixtures start: He
//! initialisation (normal, std sqrt(2 / fan_in)) for convolutions, batch norm at identity (gamma
//! 1, beta 0, running mean 0, running variance 1), and the fully connected layer as
//! torch.nn.Linear does it (weight and bias uniform in +-1/sqrt(in)).

use crate::error::Result;
use crate::graph::params::ParamSource;
use crate::tensor::{SplitMix64, Tensor};

/// A [`ParamSource`] of He-initialised weights drawn from a seed.
pub struct HeInit {
    rng: SplitMix64,
    classes: usize,
    fc_in: usize,
}

impl HeInit {
    /// Weights drawn from `seed` for a net of `classes` classes.
    pub fn new(seed: u64, classes: usize) -> Self {
        Self {
            rng: SplitMix64(seed),
            classes,
            fc_in: 1,
        }
    }
}

impl ParamSource for HeInit {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let data = if shape.len() == 4 {
            let fan_in: usize = shape[1..].iter().product();
            self.rng.normal_vec(n, (2.0 / fan_in as f32).sqrt())
        } else if name.starts_with("fc.") {
            if shape.len() == 2 {
                self.fc_in = shape[1].max(1);
            }
            let bound = 1.0 / (self.fc_in as f32).sqrt();
            (0..n)
                .map(|_| (self.rng.uniform() * 2.0 - 1.0) * bound)
                .collect()
        } else if name.ends_with("running_var") || name.ends_with(".weight") {
            vec![1.0; n]
        } else {
            vec![0.0; n]
        };
        Tensor::new(shape.to_vec(), data)
    }

    fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        (name == "fc.weight").then(|| vec![self.classes, 0])
    }
}
