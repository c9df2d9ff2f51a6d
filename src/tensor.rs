//! A plain CPU tensor: a shape and row-major f32 data. Used for weights, inputs and results.

use crate::error::{Result, fail};

/// Per-image activation shape: channels, height, width.
pub type Shape = [usize; 3];

/// A plain CPU tensor: a shape and row-major f32 data.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values (as many as the shape's product).
    pub data: Vec<f32>,
}

impl Tensor {
    /// Makes a tensor, checking that the data length matches the shape.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let expected = checked_numel(&shape)?;
        if expected != data.len() {
            fail!(
                InvalidInput,
                "tensor of shape {:?} needs {} values, got {}",
                shape,
                expected,
                data.len()
            );
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; n],
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Largest absolute difference to another tensor of the same size.
    pub fn max_abs_diff(&self, other: &[f32]) -> f32 {
        max_abs_diff(&self.data, other)
    }
}

/// The batch and per-image (C, H, W) shape of an NCHW array; a CHW array is one image.
pub fn split_batch(shape: &[usize]) -> Result<(usize, [usize; 3])> {
    match *shape {
        [n, c, h, w] => Ok((n, [c, h, w])),
        [c, h, w] => Ok((1, [c, h, w])),
        _ => fail!(
            InvalidInput,
            "expected an NCHW (or CHW) array, got shape {shape:?}"
        ),
    }
}

/// Number of elements of a shape, refusing shapes whose product overflows or is absurd (> 2^34).
pub fn checked_numel(shape: &[usize]) -> Result<usize> {
    let mut n: usize = 1;
    for &d in shape {
        n = match n.checked_mul(d) {
            Some(v) if v as u64 <= 1u64 << 34 => v,
            _ => fail!(InvalidInput, "shape {shape:?} has too many elements"),
        };
    }
    Ok(n)
}

/// Largest absolute elementwise difference; NaN anywhere counts as infinite.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared tensors differ in length");
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() { f32::INFINITY } else { m.max(d) }
    })
}

/// A deterministic pseudo-random generator (SplitMix64), so tests and benchmarks need no crate and
/// produce the same weights on every machine.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-7);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }

    /// `n` normal values of standard deviation `std`.
    pub fn normal_vec(&mut self, n: usize, std: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * std).collect()
    }
}
