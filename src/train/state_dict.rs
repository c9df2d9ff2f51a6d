//! The trainable tensors of an unfused graph by PyTorch name, and the whole state_dict written
//! as safetensors, so that a trained file loads like any torchvision checkpoint.
//!
//! The graph is the one `ArchSpec::build` returns before any pass: each conv owns
//! `NAME.weight`, each batch norm `NAME.weight` (gamma), `NAME.bias` (beta), `NAME.running_mean`,
//! `NAME.running_var` and `NAME.num_batches_tracked`, the fully connected layer `NAME.weight` and
//! `NAME.bias`.

use crate::error::{Error, Result};
use crate::graph::{Graph, Op, ValueId};
use crate::tensor::Tensor;
use safetensors::Dtype;
use std::collections::HashMap;
use std::path::Path;

/// Which tensor of its node a parameter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A convolution's weight, OIHW.
    ConvWeight,
    /// A batch norm's scale.
    BnGamma,
    /// A batch norm's shift.
    BnBeta,
    /// A fully connected layer's weight, [out, in].
    LinearWeight,
    /// A fully connected layer's bias.
    LinearBias,
}

/// One trainable tensor: where it lives in the graph and what PyTorch calls it.
#[derive(Clone, Debug)]
pub struct Param {
    /// The torch name, e.g. "layer1.0.conv1.weight".
    pub name: String,
    /// The node that owns it.
    pub node: ValueId,
    /// Which of the node's tensors it is.
    pub kind: ParamKind,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// Every trainable tensor of an unfused graph, in node order (conv weight; BN gamma then beta;
/// fc weight then bias). A conv's bias is not listed: the unfused ResNets have none (BN's beta
/// plays its part), and PyTorch's state_dict would have no name for a folded one.
pub fn params(g: &Graph) -> Vec<Param> {
    let mut out = Vec::new();
    for (id, node) in g.nodes.iter().enumerate() {
        let mut push = |suffix: &str, kind, shape: Vec<usize>| {
            out.push(Param {
                name: format!("{}.{suffix}", node.name),
                node: id,
                kind,
                shape,
            })
        };
        match &node.op {
            Op::Conv(c) => push("weight", ParamKind::ConvWeight, c.weight.shape.clone()),
            Op::BatchNorm(bn) => {
                push("weight", ParamKind::BnGamma, vec![bn.gamma.len()]);
                push("bias", ParamKind::BnBeta, vec![bn.beta.len()]);
            }
            Op::Linear(l) => {
                push("weight", ParamKind::LinearWeight, l.weight.shape.clone());
                if let Some(b) = &l.bias {
                    push("bias", ParamKind::LinearBias, vec![b.len()]);
                }
            }
            _ => {}
        }
    }
    out
}

/// The values of `p` in `g`. `p` must come from [`params`] of this graph (or one of the same
/// layout): anything else is a bug in the caller, and panics saying so.
pub fn param_data<'a>(g: &'a Graph, p: &Param) -> &'a [f32] {
    match (&g.nodes[p.node].op, p.kind) {
        (Op::Conv(c), ParamKind::ConvWeight) => &c.weight.data,
        (Op::BatchNorm(bn), ParamKind::BnGamma) => &bn.gamma,
        (Op::BatchNorm(bn), ParamKind::BnBeta) => &bn.beta,
        (Op::Linear(l), ParamKind::LinearWeight) => &l.weight.data,
        (Op::Linear(l), ParamKind::LinearBias) => l.bias.as_deref().unwrap_or(&[]),
        (op, kind) => mismatch(p, op.kind(), kind),
    }
}

/// The values of `p` in `g`, to update in place (same contract as [`param_data`]).
pub fn param_data_mut<'a>(g: &'a mut Graph, p: &Param) -> &'a mut [f32] {
    match (&mut g.nodes[p.node].op, p.kind) {
        (Op::Conv(c), ParamKind::ConvWeight) => &mut c.weight.data,
        (Op::BatchNorm(bn), ParamKind::BnGamma) => &mut bn.gamma,
        (Op::BatchNorm(bn), ParamKind::BnBeta) => &mut bn.beta,
        (Op::Linear(l), ParamKind::LinearWeight) => &mut l.weight.data,
        (Op::Linear(l), ParamKind::LinearBias) => l.bias.as_deref_mut().unwrap_or(&mut []),
        (op, kind) => mismatch(p, op.kind(), kind),
    }
}

fn mismatch(p: &Param, op: &str, kind: ParamKind) -> ! {
    panic!(
        "parameter '{}' ({kind:?}) does not belong to node {}, a {op}: it was listed from another graph",
        p.name, p.node
    )
}

/// One tensor to write: name, dtype, shape, little-endian bytes.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Entry {
    fn f32(name: String, shape: Vec<usize>, data: &[f32]) -> Self {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self {
            name,
            dtype: Dtype::F32,
            shape,
            bytes,
        }
    }
}

/// The whole PyTorch state_dict of the graph: every parameter, and per batch norm its
/// running_mean, running_var (f32) and num_batches_tracked (a 0-d I64, as torch saves it).
/// `arch` goes into the metadata as {"arch": name}, which the safetensors loader reads, so the
/// file loads without --arch. Written atomically (PATH.tmp, then renamed).
pub fn save_state(
    path: &Path,
    g: &Graph,
    num_batches_tracked: i64,
    arch: Option<&str>,
) -> Result<()> {
    let metadata: HashMap<String, String> = arch
        .map(|a| HashMap::from([("arch".to_string(), a.to_string())]))
        .unwrap_or_default();
    save_state_with(path, g, num_batches_tracked, metadata, &[])
}

/// [`save_state`] with any metadata (e.g. arch, dataset, mean, std, classes: what `classify`
/// and `eval` read to preprocess and label) and extra f32 tensors (a checkpoint's momentum).
pub fn save_state_with(
    path: &Path,
    g: &Graph,
    num_batches_tracked: i64,
    metadata: HashMap<String, String>,
    extra: &[(String, Tensor)],
) -> Result<()> {
    let mut entries: Vec<Entry> = params(g)
        .iter()
        .map(|p| Entry::f32(p.name.clone(), p.shape.clone(), param_data(g, p)))
        .collect();
    for node in &g.nodes {
        if let Op::BatchNorm(bn) = &node.op {
            let c = vec![bn.mean.len()];
            let name = |s: &str| format!("{}.{s}", node.name);
            entries.push(Entry::f32(name("running_mean"), c.clone(), &bn.mean));
            entries.push(Entry::f32(name("running_var"), c, &bn.var));
            entries.push(Entry {
                name: name("num_batches_tracked"),
                dtype: Dtype::I64,
                shape: vec![],
                bytes: num_batches_tracked.to_le_bytes().to_vec(),
            });
        }
    }
    for (name, t) in extra {
        entries.push(Entry::f32(name.clone(), t.shape.clone(), &t.data));
    }
    let metadata = (!metadata.is_empty()).then_some(metadata);
    write_atomic(path, &serialize(path, &entries, metadata)?)
}

/// Gradients (or any per-parameter values) as a safetensors file of f32 tensors with the given
/// names. Written atomically (PATH.tmp, then renamed).
pub fn save_tensors(path: &Path, named: &[(String, Tensor)]) -> Result<()> {
    let entries: Vec<Entry> = named
        .iter()
        .map(|(name, t)| Entry::f32(name.clone(), t.shape.clone(), &t.data))
        .collect();
    write_atomic(path, &serialize(path, &entries, None)?)
}

fn serialize(
    path: &Path,
    entries: &[Entry],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let bad = |e: safetensors::SafeTensorError| {
        Error::InvalidInput(format!(
            "{}: cannot encode safetensors: {e}",
            path.display()
        ))
    };
    let views = entries
        .iter()
        .map(|e| {
            let view = safetensors::tensor::TensorView::new(e.dtype, e.shape.clone(), &e.bytes);
            Ok((e.name.as_str(), view.map_err(bad)?))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::tensor::serialize(views, metadata).map_err(bad)
}

/// Writes PATH.tmp and renames it over PATH, so that a reader (or a crash) never sees half a
/// checkpoint.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(tmp.display(), "write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path.display(), "write", e))
}
