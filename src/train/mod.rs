//! Training (issue 15): the trainable parameters of an unfused graph and their state_dict, the
//! hyper-parameters of a step, and the GPU trainer.

pub mod data;
pub mod hyper;
pub mod init;
pub mod schedule;
pub mod state_dict;
pub mod trainer;

pub use hyper::Hyper;
pub use trainer::{StepStats, Trainer};
