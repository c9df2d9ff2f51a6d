//! Loading models: a file (or bytes) becomes an architecture plus weights, or a ready graph.

pub mod default;
pub mod npy;
pub mod onnx;
pub mod safetensors;
pub mod seeded;
pub mod sniff;
mod validate;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::graph::arch::ArchSpec;
use crate::graph::params::NamedParams;
use crate::tensor::Tensor;
use std::collections::HashMap;

/// What a model file describes.
#[derive(Clone, Debug)]
pub enum Network {
    /// One of the paper's architectures plus weights by torchvision name (safetensors).
    Arch {
        /// The architecture.
        spec: ArchSpec,
        /// Every tensor of the file by torchvision name (wrapper prefixes removed).
        weights: HashMap<String, Tensor>,
    },
    /// A ready graph for a fixed input shape (ONNX).
    Graph(Graph),
}

/// A loaded network.
#[derive(Clone, Debug)]
pub struct Model {
    /// The architecture and weights, or the graph.
    pub network: Network,
    /// Free-form metadata from the file (safetensors `__metadata__`).
    pub metadata: HashMap<String, String>,
    /// Where it came from (file name), for error messages.
    pub source: String,
}

impl Model {
    /// The per-image input shape the model expects: a graph's own input (ONNX), else the
    /// architecture's default (3x224x224 for ImageNet nets, 3x32x32 for CIFAR nets).
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

    /// Builds the graph for per-image input `input` (C, H, W), moving the weights into it (no
    /// copy), and refusing tensors the architecture does not use.
    pub fn into_graph_for(self, input: [usize; 3]) -> Result<Graph> {
        let source = self.source;
        let (spec, weights) = match self.network {
            Network::Arch { spec, weights } => (spec, weights),
            Network::Graph(g) => {
                if g.input_shape() != input {
                    return Err(Error::invalid_model(
                        &source,
                        format!(
                            "the model takes {:?} inputs, not {input:?}",
                            g.input_shape()
                        ),
                    ));
                }
                return Ok(g);
            }
        };
        let mut params = NamedParams::new(weights);
        let g = spec.build(&mut params, input).map_err(|e| {
            Error::invalid_model(&source, format!("{e} (architecture {})", spec.name()))
        })?;
        let unused = params.unused();
        if !unused.is_empty() {
            let shown: Vec<_> = unused.iter().take(5).cloned().collect();
            return Err(Error::invalid_model(
                &source,
                format!(
                    "{} tensor(s) are not part of {}: {}{}",
                    unused.len(),
                    spec.name(),
                    shown.join(", "),
                    if unused.len() > 5 { ", ..." } else { "" }
                ),
            ));
        }
        Ok(g)
    }

    /// [`Model::into_graph_for`] at the model's own input shape.
    pub fn into_graph(self) -> Result<Graph> {
        let input = self.input_shape();
        self.into_graph_for(input)
    }

    /// [`Model::into_graph_for`] that keeps the model: it copies every weight, so prefer the
    /// consuming form unless the model is needed again (another input size, another session).
    pub fn graph_for(&self, input: [usize; 3]) -> Result<Graph> {
        self.clone().into_graph_for(input)
    }

    /// Trainable and other stored values: the parameter count of an architecture's weights, or
    /// of a graph's convolutions and fully connected layers.
    pub fn parameter_count(&self) -> usize {
        match &self.network {
            Network::Arch { weights, .. } => weights.values().map(|t| t.numel()).sum(),
            Network::Graph(g) => g.parameter_count(),
        }
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
    use std::io::Read;
    let name = path.display().to_string();
    let io = |e| Error::io(&name, "read", e);
    // The first bytes tell the formats apart; a safetensors file is then read tensor by tensor,
    // never whole (see safetensors::load_file), unless it turns out broken: then all of it says
    // what it really is.
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(SNIFF_BYTES).read_to_end(&mut head))
        .map_err(io)?;
    let model = if is_onnx_file(&name, &head) {
        warn_arch_ignored(&name, arch);
        let bytes = std::fs::read(path).map_err(io)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        onnx::load(&bytes, &name, &onnx::ExternalDir(dir.to_path_buf()))
            .map_err(|e| diagnose(e, &bytes, &name, true))?
    } else {
        safetensors::load_file(path, arch).map_err(|e| match std::fs::read(path) {
            Ok(bytes) => diagnose(e, &bytes, &name, false),
            Err(_) => e,
        })?
    };
    validate::check(&model, opts).map_err(|e| Error::invalid_model(&name, e))?;
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
        safetensors::load(bytes, name, arch).map_err(|e| diagnose(e, bytes, name, false))?
    };
    validate::check(&model, opts).map_err(|e| Error::invalid_model(name, e))?;
    Ok(model)
}

/// How much of a file's start tells ONNX from safetensors (see [`is_onnx_file`]).
#[cfg(not(target_arch = "wasm32"))]
const SNIFF_BYTES: u64 = 16;

/// Replaces a loader's error by what the file really is, when its content says.
fn diagnose(e: Error, bytes: &[u8], name: &str, as_onnx: bool) -> Error {
    let what = if as_onnx {
        sniff::not_onnx(bytes)
    } else {
        sniff::not_safetensors(bytes)
    };
    match what {
        Some(what) => Error::invalid_model(name, format!("this is {what}")),
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
