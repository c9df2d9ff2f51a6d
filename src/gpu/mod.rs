//! Everything about the GPU that is not a kernel: adapter choice, the device, pipeline caching.

mod context;
mod kernels;

pub use context::*;
pub use kernels::Kernel;
