//! Training (issue 15): the trainable parameters of an unfused graph and their state_dict.

pub mod state_dict;
