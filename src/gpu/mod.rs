//! Everything about the GPU that is not a kernel: adapter choice, the device and its pipeline
//! cache, and the dispatches recorded on it.

mod capabilities;
mod context;
mod dispatch;

pub use capabilities::{EngineCapabilities, Timestamps, subgroup8};
pub use context::*;
pub use dispatch::{Cost, Dispatch, read_buffer, storage_f16, storage_f32, uniform, workgroups};
