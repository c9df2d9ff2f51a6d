//! ONNX models: the protobuf is decoded with `prost` (types generated from the vendored
//! onnx.proto), constant subgraphs are folded, and the activation ops become our graph for the
//! input's fixed per-image shape. Everything here works on bytes, so it also runs in the browser;
//! only [`ExternalDir`] touches the file system ([`ExternalFiles`] serves external data from
//! memory).

mod fold;
mod import;
mod node;
mod ops;
mod order;
pub mod proto;
mod shortcut;
mod tensor;

pub use prost::Message;
#[cfg(not(target_arch = "wasm32"))]
pub use tensor::ExternalDir;
pub use tensor::{ExternalData, ExternalFiles, NoExternalData};

use super::{Model, Network};
use anyhow::{Result, anyhow};
use std::collections::HashMap;

/// Loads an ONNX model from its bytes; `name` (the file name) starts every error message, and
/// `external` supplies tensors stored outside the file.
pub fn load(bytes: &[u8], name: &str, external: &dyn ExternalData) -> crate::Result<Model> {
    parse(bytes, name, external).map_err(|e| crate::Error::invalid_model(name, e))
}

fn parse(bytes: &[u8], name: &str, external: &dyn ExternalData) -> Result<Model> {
    // One line per error, starting with the file name.
    let fail = |e: anyhow::Error| anyhow!("{name}: {}", format!("{e:#}").replace('\n', " "));
    let model = proto::ModelProto::decode(bytes)
        .map_err(|e| anyhow!("{name}: not a valid ONNX file (protobuf decoding failed: {e})"))?;
    if model.graph.is_none() {
        return Err(anyhow!("{name}: not an ONNX model (it has no graph)"));
    }
    let graph = import::import(&model, external).map_err(fail)?;
    let mut metadata: HashMap<String, String> = model
        .metadata_props
        .iter()
        .filter_map(|p| Some((p.key.clone()?, p.value.clone().unwrap_or_default())))
        .collect();
    if let Some(p) = &model.producer_name {
        let version = model.producer_version.as_deref().unwrap_or("");
        metadata
            .entry("producer".into())
            .or_insert_with(|| format!("{p} {version}").trim().to_string());
    }
    Ok(Model {
        network: Network::Graph(graph),
        metadata,
        source: name.to_string(),
    })
}
