//! resnet-wgpu: the deep residual networks of He et al. (2015) as WGSL compute shaders on wgpu,
//! on Vulkan, Metal, DX12, OpenGL and the browser's WebGPU.
//!
//! Classify images with a model file (or the embedded default model):
//!
//! ```no_run
//! # fn main() -> resnet_wgpu::Result<()> {
//! use resnet_wgpu::{Classifier, GpuContext, GpuOptions, model};
//! let model = model::load_file("resnet18.safetensors".as_ref(), None)?;
//! let ctx = GpuContext::new_blocking(&GpuOptions::default())?;
//! let classifier = Classifier::new(ctx, model, 1)?;
//! let image = resnet_wgpu::preprocess::load_image("cat.jpg".as_ref()).expect("an image");
//! for p in &classifier.classify(&[image], 5)?[0] {
//!     println!("{} {:.1}%", p.label, p.probability * 100.0);
//! }
//! # Ok(()) }
//! ```
//!
//! Or run raw tensors through a network:
//!
//! ```no_run
//! # fn main() -> resnet_wgpu::Result<()> {
//! use resnet_wgpu::{GpuContext, GpuOptions, Session, SessionOptions, model};
//! let graph = model::load_file("resnet18.safetensors".as_ref(), None)?.into_graph()?;
//! let ctx = GpuContext::new_blocking(&GpuOptions::default())?;
//! let session = Session::new(ctx, graph, &SessionOptions::default())?;
//! let logits = session.run(&vec![0.0f32; 3 * 224 * 224])?.logits;
//! # Ok(()) }
//! ```
//!
//! Errors are [`Error`]: match on its variant (a lost device, an adapter limit, a broken model
//! file, ...), show its one-line message to people.
//!
//! Layers, lowest first: [`tensor`], [`precision`], `layout`; `kernels` (WGSL sources, fragments,
//! generators, the kernel registry); [`gpu`] and [`graph`]; [`plan`] (the one place kernels are
//! chosen); `ops` (each kernel's host side); [`session`]; [`model`] loaders, [`classifier`],
//! [`portability`]; the command line on top. Modules hidden from these docs (`kernels`, `ops`,
//! `layout`, `reference`, `fuzzing`) are the engine's internals, public only for its own tests,
//! fuzzers and benchmarks: no stability promise.

#![warn(missing_docs)]

pub mod classifier;
pub mod cpu_time;
pub mod dataset;
pub mod error;
pub mod evaluate;
#[doc(hidden)]
pub mod fuzzing;
pub mod gpu;
pub mod graph;
#[doc(hidden)]
pub mod kernels;
#[doc(hidden)]
pub mod layout;
pub mod model;
#[doc(hidden)]
pub mod ops;
pub mod plan;
pub mod portability;
pub mod precision;
pub mod preprocess;
#[doc(hidden)]
pub mod reference;
pub mod scores;
pub mod session;
pub mod tensor;
pub mod train;
pub mod tune;

/// This crate's version, as reports print it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use classifier::{Classifier, Prediction};
pub use error::{Error, Result};
pub use gpu::{GpuContext, GpuOptions};
pub use graph::Graph;
pub use graph::arch::ArchSpec;
pub use model::Model;
pub use plan::conv::ConvPolicy;
pub use plan::{SessionOptions, Tune};
pub use precision::Precision;
pub use session::{Outputs, Session};
pub use tensor::Tensor;
