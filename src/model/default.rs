//! The model embedded in the binary: ResNet-20 trained on Fashion-MNIST (see assets/README.md).

use super::Model;
use crate::error::Result;

/// The name the embedded model goes by in messages and reports.
pub const DEFAULT_MODEL_NAME: &str = "resnet20_fmnist.safetensors (embedded)";
static DEFAULT_MODEL: &[u8] = include_bytes!("../../assets/resnet20_fmnist.safetensors");

/// Loads the embedded default model.
pub fn default_model() -> Result<Model> {
    super::safetensors::load(DEFAULT_MODEL, DEFAULT_MODEL_NAME, None)
}

/// The 1000 ImageNet class names, for 1000-class models without names of their own.
pub fn imagenet_classes() -> Vec<String> {
    include_str!("../../assets/imagenet_classes.txt")
        .lines()
        .map(str::to_string)
        .collect()
}
