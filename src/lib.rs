//! resnet-wgpu: the deep residual networks of He et al. (2015) as WGSL compute shaders on wgpu.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use resnet_wgpu::{gpu::{GpuContext, GpuOptions}, model, session::{Session, SessionOptions}};
//! let model = model::load_file("resnet18.safetensors".as_ref(), None)?;
//! let ctx = GpuContext::new_blocking(&GpuOptions::default())?;
//! let session = Session::new(ctx, &model.graph()?, &SessionOptions::default())?;
//! let input = vec![0.0f32; 3 * 224 * 224];
//! let logits = session.run(&input)?.logits;
//! # Ok(()) }
//! ```

pub mod classifier;
pub mod dataset;
pub mod fuzzing;
pub mod gpu;
pub mod graph;
pub mod model;
pub mod ops;
pub mod portability;
pub mod precision;
pub mod preprocess;
pub mod reference;
pub mod session;
pub mod tensor;

/// This crate's version, as reports print it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use classifier::{Classifier, Prediction};
pub use graph::arch::ArchSpec;
pub use model::Model;
pub use precision::Precision;
pub use session::{Outputs, Session, SessionOptions};
pub use tensor::Tensor;

/// Softmax of one row of logits (host side, for reports).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    reference::softmax(logits, 1)
}

/// Indices of the `k` largest values, largest first.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx.truncate(k);
    idx
}
