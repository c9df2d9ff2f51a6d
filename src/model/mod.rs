//! Loading models: a file (or bytes) becomes an architecture plus weights, or a ready graph.

pub mod default;
pub mod npy;
pub mod onnx;
pub mod safetensors;
pub mod seeded;
pub mod sniff;
mod validate;

use crate::graph::Graph;
use crate::graph::arch::ArchSpec;
use crate::graph::params::NamedParams;
use crate::tensor::Tensor;
use anyhow::{Result, bail};
use std::collections::HashMap;

/// What a model file describes.
#[derive(Clone, Debug)]
pub enum Network {
    /// One of the paper's architectures plus weights by torchvision name (safetensors).
    Arch {
        spec: ArchSpec,
        weights: HashMap<String, Tensor>,
    },
    /// A ready graph for a fixed input shape (ONNX).
    Graph(Graph),
}

/// A loaded network.
#[derive(Clone, Debug)]
pub struct Model {
    pub network: Network,
    /// Free-form metadata from the file (safetensors `__metadata__`).
    pub metadata: HashMap<String, String>,
    /// Where it came from (file name), for error messages.
    pub source: String,
}

impl Model {
    /// The per-image input shape the model expects: the metadata's `input` shape when it has
    /// one, else the architecture's default.
    pub fn input_shape(&self) -> [usize; 3] {
        match &self.network {
            Network::Arch { spec, .. } => spec.default_input(),
            Network::Graph(g) => g.input_shape(),
        }
    }

    /// The architecture, when the model is one of the paper's.
    pub fn arch(&self) -> Option<&ArchSpec> {
        match &self.network {
            Network::Arch { spec, .. } => Some(spec),
            Network::Graph(_) => None,
        }
    }

    /// A short name for reports: the architecture, or "onnx graph".
    pub fn describe(&self) -> String {
        match &self.network {
            Network::Arch { spec, .. } => spec.name(),
            Network::Graph(g) => format!("graph of {} nodes", g.nodes.len() - 1),
        }
    }

    /// Builds the graph for per-image input `input` (C, H, W), refusing unused tensors.
    pub fn graph_for(&self, input: [usize; 3]) -> Result<Graph> {
        let (spec, weights) = match &self.network {
            Network::Arch { spec, weights } => (spec, weights),
            Network::Graph(g) => {
                if g.input_shape() != input {
                    bail!(
                        "{}: the model takes {:?} inputs, not {:?}",
                        self.source,
                        g.input_shape(),
                        input
                    );
                }
                return Ok(g.clone());
            }
        };
        let mut params = NamedParams::new(weights.clone());
        let g = spec
            .build(&mut params, input)
            .map_err(|e| anyhow::anyhow!("{}: {e} (architecture {})", self.source, spec.name()))?;
        let unused = params.unused();
        if !unused.is_empty() {
            let shown: Vec<_> = unused.iter().take(5).cloned().collect();
            bail!(
                "{}: {} tensor(s) are not part of {}: {}{}",
                self.source,
                unused.len(),
                spec.name(),
                shown.join(", "),
                if unused.len() > 5 { ", ..." } else { "" }
            );
        }
        Ok(g)
    }

    pub fn graph(&self) -> Result<Graph> {
        self.graph_for(self.input_shape())
    }

    /// Class names from the metadata (`classes`, a JSON list), if any.
    pub fn class_names(&self) -> Option<Vec<String>> {
        serde_json::from_str(self.metadata.get("classes")?).ok()
    }
}

/// What a loader accepts beyond a sound file.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Load a model whose weights hold NaN or infinity, or whose batch-norm variances are
    /// negative (refused by default: every output would be NaN).
    pub allow_non_finite: bool,
}

/// Loads a model file, choosing the format by its extension. `arch` overrides the file's own
/// (safetensors only: an ONNX file describes its own graph). ONNX external data files are read
/// from the model file's folder. See [`load_file_with`] for the checks.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_file(path: &std::path::Path, arch: Option<&str>) -> Result<Model> {
    load_file_with(path, arch, &LoadOptions::default())
}

/// [`load_file`] with options. The model's values are checked (finite weights, non-negative
/// variances, sound metadata) and a file that is something else (a PyTorch pickle, an ONNX
/// file named .safetensors, a Hugging Face checkpoint) is named as such.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_file_with(
    path: &std::path::Path,
    arch: Option<&str>,
    opts: &LoadOptions,
) -> Result<Model> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let name = path.display().to_string();
    let model = if is_onnx_file(&name, &bytes) {
        warn_arch_ignored(&name, arch);
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        onnx::load(&bytes, &name, &onnx::ExternalDir(dir.to_path_buf()))
            .map_err(|e| diagnose(e, &bytes, &name, true))?
    } else {
        load_safetensors(&bytes, &name, arch)?
    };
    validate::check(&model, opts)?;
    Ok(model)
}

/// Loads a model from bytes; `name` is used in messages and to pick the format. An ONNX model
/// whose tensors live in external files cannot be loaded this way (use [`load_file`] or
/// [`onnx::load`] with an [`onnx::ExternalData`]).
pub fn load_bytes(bytes: &[u8], name: &str, arch: Option<&str>) -> Result<Model> {
    load_bytes_with(bytes, name, arch, &LoadOptions::default())
}

/// [`load_bytes`] with options (and the checks of [`load_file_with`]).
pub fn load_bytes_with(
    bytes: &[u8],
    name: &str,
    arch: Option<&str>,
    opts: &LoadOptions,
) -> Result<Model> {
    let model = if is_onnx_file(name, bytes) {
        warn_arch_ignored(name, arch);
        onnx::load(bytes, name, &onnx::NoExternalData)
            .map_err(|e| diagnose(e, bytes, name, true))?
    } else {
        load_safetensors(bytes, name, arch)?
    };
    validate::check(&model, opts)?;
    Ok(model)
}

/// The safetensors loader, after refusing Hugging Face names (which it would report as "cannot
/// tell the architecture" or a missing 'conv1.weight') and with a failure explained by the
/// file's content when it is another format.
fn load_safetensors(bytes: &[u8], name: &str, arch: Option<&str>) -> Result<Model> {
    if let Some(key) = sniff::hugging_face_name(bytes) {
        bail!(
            "{name}: this looks like a Hugging Face transformers checkpoint (tensor names like '{key}'), which is not supported yet (issue 17); export the model to ONNX, or rename its tensors to torchvision's (conv1.weight, layer1.0.conv1.weight, ...)"
        );
    }
    safetensors::load(bytes, name, arch).map_err(|e| diagnose(e, bytes, name, false))
}

/// Replaces a loader's error by what the file really is, when its content says.
fn diagnose(e: anyhow::Error, bytes: &[u8], name: &str, as_onnx: bool) -> anyhow::Error {
    let what = if as_onnx {
        sniff::not_onnx(bytes)
    } else {
        sniff::not_safetensors(bytes)
    };
    match what {
        Some(what) => anyhow::anyhow!("{name}: this is {what}"),
        None => e,
    }
}

/// ONNX by its extension, or by its content when the name has none of ours: a safetensors file
/// has its JSON header ('{') at byte 8, an ONNX file starts with field 1 (ir_version, 0x08).
fn is_onnx_file(name: &str, bytes: &[u8]) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".onnx")
        || (!lower.ends_with(".safetensors")
            && bytes.first() == Some(&0x08)
            && bytes.get(8) != Some(&b'{'))
}

fn warn_arch_ignored(name: &str, arch: Option<&str>) {
    if let Some(a) = arch {
        log::warn!("{name}: an ONNX model describes its own graph; --arch {a} is ignored");
    }
}
