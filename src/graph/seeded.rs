//! Seeded weights that `scripts/make_resnet18_fixture.py` makes bit for bit identically, so that
//! the ResNet-18 reference fixture needs no 47 MB weight file in the repository: the script
//! computes the reference outputs (ONNX Runtime, a float64 NumPy forward pass) from the weights it
//! generates, the repository keeps only those outputs, and the tests generate the same weights
//! here.
//!
//! Every tensor has its own generator, [`SplitMix64`] seeded with `seed ^ fnv1a64(name)`, so
//! values do not depend on the order the builders ask for tensors. Every value is a uniform `u`
//! in [0, 1) (24 bits, exact in f32) and at most two f32 operations on it, each rounded once,
//! which NumPy's float32 arithmetic reproduces exactly (no logarithms or cosines, whose last bit
//! differs between math libraries):
//! - conv weights: He-uniform, `(2u - 1) * sqrt(6 / fan_in)` (variance 2 / fan_in);
//! - batch norm: gamma `0.5 + u`, or `0.1 + 0.2 u` for the last BN of a residual branch (so the
//!   sum over blocks stays O(1)), beta and running mean `(2u - 1) * 0.1`, running variance
//!   `0.5 + u`;
//! - fc: weight `(2u - 1) / sqrt(in)`, bias `(2u - 1) * 0.1`;
//! - inputs ([`seeded_input`]): `(2u - 1) * 2`.

use super::params::ParamSource;
use crate::error::Result;
use crate::tensor::{SplitMix64, Tensor};
use std::collections::HashMap;

/// The seed of the committed ResNet-18 fixture (tests/fixtures/resnet18).
pub const RESNET18_FIXTURE_SEED: u64 = 18;

/// FNV-1a, 64 bits, of a name's UTF-8 bytes.
pub fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The generator of the tensor (or input) called `name`.
pub fn generator(seed: u64, name: &str) -> SplitMix64 {
    SplitMix64(seed ^ fnv1a64(name))
}

/// `n` values `(2u - 1) * bound`.
fn symmetric(rng: &mut SplitMix64, n: usize, bound: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.uniform() * 2.0 - 1.0) * bound)
        .collect()
}

/// `n` values `lo + width * u` (one rounding each when `width` is 1).
fn offset(rng: &mut SplitMix64, n: usize, lo: f32, width: f32) -> Vec<f32> {
    (0..n).map(|_| lo + width * rng.uniform()).collect()
}

/// The tensor `name` of shape `shape`, as described in the module documentation.
pub fn seeded_tensor(seed: u64, name: &str, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let rng = &mut generator(seed, name);
    let data = if name.ends_with("running_var") {
        offset(rng, n, 0.5, 1.0)
    } else if name.ends_with("running_mean") || name.ends_with(".bias") {
        symmetric(rng, n, 0.1)
    } else if shape.len() == 4 {
        let fan_in: usize = shape[1..].iter().product();
        symmetric(rng, n, (6.0f32 / fan_in as f32).sqrt())
    } else if shape.len() == 2 {
        symmetric(rng, n, 1.0f32 / (shape[1] as f32).sqrt())
    } else {
        // BN gamma.
        let last_of_branch =
            name.starts_with("layer") && (name.contains(".bn2.") || name.contains(".bn3."));
        if last_of_branch {
            offset(rng, n, 0.1, 0.2)
        } else {
            offset(rng, n, 0.5, 1.0)
        }
    };
    Tensor::new(shape.to_vec(), data)
}

/// `n` input values `(2u - 1) * 2` from the generator named "input".
pub fn seeded_input(seed: u64, n: usize) -> Vec<f32> {
    symmetric(&mut generator(seed, "input"), n, 2.0)
}

/// A weight source that generates each tensor on request and keeps a copy, so that the builder
/// of an architecture names and shapes the tensors (torchvision names) and the copies make a
/// model file's worth of weights.
pub struct SeededParams {
    /// The seed every tensor's generator starts from.
    pub seed: u64,
    /// Classes of the fully connected layer.
    pub classes: usize,
    /// Every tensor handed out, by name.
    pub tensors: HashMap<String, Tensor>,
}

impl SeededParams {
    /// A source of the seeded tensors of a net with `classes` classes.
    pub fn new(seed: u64, classes: usize) -> Self {
        Self {
            seed,
            classes,
            tensors: HashMap::new(),
        }
    }
}

impl ParamSource for SeededParams {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = seeded_tensor(self.seed, name, shape)?;
        self.tensors.insert(name.to_string(), t.clone());
        Ok(t)
    }

    fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        (name == "fc.weight").then(|| vec![self.classes, 0])
    }
}

/// A position-weighted digest of a tensor's f32 bit patterns: sum of `bits[i] * (i + 1)` modulo
/// 2^64. The fixture script writes the same per tensor, so a test can show that both sides
/// generated identical weights, tensor by tensor.
pub fn digest(values: &[f32]) -> u64 {
    values.iter().enumerate().fold(0u64, |d, (i, v)| {
        d.wrapping_add((v.to_bits() as u64).wrapping_mul(i as u64 + 1))
    })
}
