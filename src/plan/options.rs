//! What a caller asks of a session.

use super::conv::ConvPolicy;
use crate::precision::Precision;

/// Options of [`Session::new`](crate::Session::new) (and of the [`Classifier`](crate::Classifier)
/// built on it).
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Images per forward pass; larger inputs run in chunks of this size.
    pub batch: usize,
    /// Named intermediate values (graph taps such as "stem", "layer1") to read back on each run.
    pub taps: Vec<String>,
    /// Fold batch norm and fuse epilogues (on by default; off to test the unfused kernels).
    pub optimize: bool,
    /// Which convolution kernels to use (the tuned ones by default).
    pub conv: ConvPolicy,
    /// What the convolutions compute in (f32 by default; f16 needs SHADER_F16 and the tuned
    /// kernels, see [`Precision`]).
    pub precision: Precision,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            batch: 1,
            taps: Vec::new(),
            optimize: true,
            conv: ConvPolicy::Auto,
            precision: Precision::F32,
        }
    }
}
