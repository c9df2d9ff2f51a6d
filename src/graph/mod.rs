//! The network as a graph of ops on NCHW activations (batch is left open until a session is made).
//!
//! `ir` holds the types, `arch` builds every ResNet of the paper, `fuse` folds batch norm and fuses
//! the residual add and ReLU into the convolution, `params` supplies weights to the builders.

pub mod arch;
#[doc(hidden)]
pub mod fuse;
mod ir;
#[doc(hidden)]
pub mod memory;
pub mod params;
pub mod seeded;
#[doc(hidden)]
pub mod space_to_depth;

pub use ir::*;
