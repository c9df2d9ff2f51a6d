//! The arithmetic precision of a session's convolutions.

use std::fmt;
use std::str::FromStr;

/// What the tuned convolution kernels compute in.
///
/// `F16` needs an adapter with `wgpu::Features::SHADER_F16`. The convolutions (direct, 1x1 and
/// Winograd's products) then keep their weights on the GPU as f16 (half the bytes) and multiply
/// and accumulate in f16; activations stay f32 in memory (converted to f16 as a convolution
/// loads them), and the epilogue (bias, residual add, ReLU), every other kernel (pools,
/// Winograd's transforms, the final fully connected layer) and the reference convolution stay
/// f32. Expect logits to differ from f32 by about 1e-2 (see the portability suite's "f16"
/// checks for measured bounds); partial sums beyond f16's range (65504) become infinite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// 32-bit floats everywhere (the default).
    #[default]
    F32,
    /// f16 weights and arithmetic in the convolutions (needs SHADER_F16).
    F16,
}

impl Precision {
    /// "f32" or "f16", as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            _ => anyhow::bail!("unknown precision '{s}' (expected f32 or f16)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names() {
        for p in [Precision::F32, Precision::F16] {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        assert_eq!("FP16".parse::<Precision>().unwrap(), Precision::F16);
        let e = "f64".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("f64") && e.contains("f32 or f16"), "{e}");
    }
}
