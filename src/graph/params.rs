//! Where the architecture builders get their weights from: a loaded file, or synthetic weights for
//! tests, benchmarks and `info`.

use crate::error::{Result, fail, require};
use crate::tensor::{SplitMix64, Tensor};
use std::collections::{BTreeSet, HashMap};

/// Supplies a named tensor of an expected shape to the builders.
pub trait ParamSource {
    /// The tensor called `name`, which must have exactly `shape`.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor>;
    /// The shape of `name` if the source knows it (used to infer e.g. the class count).
    fn shape_of(&self, name: &str) -> Option<Vec<usize>>;
}

/// Weights from a file, by torchvision names. Each tensor moves out to the layer that asks for
/// it (no copy); what is left at the end is what the architecture does not use.
pub struct NamedParams {
    tensors: HashMap<String, Tensor>,
}

impl NamedParams {
    /// Takes ownership of the file's tensors.
    pub fn new(tensors: HashMap<String, Tensor>) -> Self {
        Self { tensors }
    }

    /// Tensors that no layer asked for (BN's `num_batches_tracked` does not count).
    pub fn unused(&self) -> Vec<String> {
        let names: BTreeSet<&String> = self
            .tensors
            .keys()
            .filter(|k| !k.ends_with("num_batches_tracked"))
            .collect();
        names.into_iter().cloned().collect()
    }
}

impl ParamSource for NamedParams {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let Some(t) = self.tensors.remove(name) else {
            fail!(
                InvalidGraph,
                "missing tensor '{name}' (expected shape {shape:?})"
            );
        };
        require!(
            t.shape == shape,
            InvalidGraph,
            "tensor '{name}' has shape {:?}, expected {shape:?}",
            t.shape
        );
        Ok(t)
    }

    fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|t| t.shape.clone())
    }
}

/// Deterministic random weights in the style of the fixtures: He-normal convs, BN statistics near
/// identity, fc ~ U(±1/sqrt(in)). Activations stay O(1) through deep nets because every conv is
/// scaled so its BN sees roughly unit variance. Also counts trainable parameters.
pub struct SyntheticParams {
    rng: SplitMix64,
    /// Classes of the fully connected layer (`fc.weight`'s rows).
    pub num_classes: usize,
    /// Trainable parameters handed out so far (running statistics excluded).
    pub trainable: u64,
    fc_in: usize,
}

impl SyntheticParams {
    /// Weights drawn from `seed`, for a net of `num_classes` classes.
    pub fn new(seed: u64, num_classes: usize) -> Self {
        Self {
            rng: SplitMix64(seed),
            num_classes,
            trainable: 0,
            fc_in: 0,
        }
    }
}

impl ParamSource for SyntheticParams {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let data = if name.ends_with("running_var") {
            (0..n).map(|_| 0.5 + self.rng.uniform()).collect()
        } else if name.ends_with("running_mean") {
            self.rng.normal_vec(n, 0.1)
        } else if shape.len() == 4 {
            let fan_in: usize = shape[1..].iter().product();
            self.rng.normal_vec(n, (2.0 / fan_in as f32).sqrt())
        } else if name.starts_with("fc.") {
            let fan_in = self.fc_in.max(1);
            if shape.len() == 2 {
                self.fc_in = shape[1];
            }
            let bound = 1.0 / (if shape.len() == 2 { shape[1] } else { fan_in } as f32).sqrt();
            (0..n)
                .map(|_| (self.rng.uniform() * 2.0 - 1.0) * bound)
                .collect()
        } else if name.ends_with(".weight") {
            // BN gamma. The last BN of a residual branch gets a small gamma so that the sum of
            // dozens of blocks stays O(1) (the fixtures rescale per layer for the same reason).
            let last_of_branch =
                name.starts_with("layer") && (name.contains(".bn2.") || name.contains(".bn3."));
            let (lo, width) = if last_of_branch {
                (0.1, 0.2)
            } else {
                (0.5, 1.0)
            };
            (0..n).map(|_| lo + width * self.rng.uniform()).collect()
        } else {
            // BN beta
            self.rng.normal_vec(n, 0.1)
        };
        if !name.ends_with("running_mean") && !name.ends_with("running_var") {
            self.trainable += n as u64;
        }
        Tensor::new(shape.to_vec(), data)
    }

    fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        (name == "fc.weight").then(|| vec![self.num_classes, 0])
    }
}
