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
    /// Whether to choose each convolution's kernel by measuring the candidates on the adapter
    /// (see [`Tune`]); off by default, so that a library session is deterministic and starts at
    /// once. The command line tunes (`--tune quick`) unless told otherwise.
    pub tune: Tune,
    /// At most this long measuring per session (none: until every shape is tuned). Shapes left
    /// when it is spent run the default table's kernel and are not cached, so the next start
    /// measures them: a first visit stays short and the tuning completes over a few starts. The
    /// shapes with the most arithmetic are measured first, where a better kernel saves most.
    pub tune_budget: Option<std::time::Duration>,
}

/// How a session chooses its convolution kernels (with [`ConvPolicy::Auto`]; a forced policy is
/// never tuned).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Tune {
    /// The default table (`plan::conv::default_algo`): deterministic, nothing measured.
    #[default]
    Off,
    /// Time a shortlist per distinct layer shape (the table's choice, the workgroup-tiled and
    /// split-K kernels, the main direct tiles, Winograd where it applies); results cached.
    Quick,
    /// Time every candidate of `plan::conv::candidates`, more runs each; results cached.
    Full,
}

impl Tune {
    /// `off`, `quick` or `full`.
    pub fn name(self) -> &'static str {
        match self {
            Tune::Off => "off",
            Tune::Quick => "quick",
            Tune::Full => "full",
        }
    }
}

impl std::str::FromStr for Tune {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(Tune::Off),
            "quick" => Ok(Tune::Quick),
            "full" => Ok(Tune::Full),
            _ => Err(format!("'{s}' is not a tuning mode: off, quick or full")),
        }
    }
}

impl std::fmt::Display for Tune {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            batch: 1,
            taps: Vec::new(),
            optimize: true,
            conv: ConvPolicy::Auto,
            precision: Precision::F32,
            tune: Tune::Off,
            tune_budget: None,
        }
    }
}
