//! Turns an ONNX graph into our [`Graph`]: nodes in dependency order, every ONNX value either a
//! constant (folded) or an activation, and each activation op mapped onto the IR.

use super::fold;
use super::node::NodeRef;
use super::order::order;
use super::proto::{ModelProto, TensorProto, ValueInfoProto};
use super::tensor::{BATCH, Const, ExternalData, decode};
use crate::graph::{Graph, Shape, ValueId};
use anyhow::{Result, anyhow, bail, ensure};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Something an ONNX activation still owes before it is a plain NCHW value: a Slice that
/// subsamples height and width, or a zero Pad of height and width that a Conv will absorb.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Pending {
    None,
    /// Every stride-th row and column, starting at 0.
    Subsample([usize; 2]),
    /// Zero rows and columns: top, left, bottom, right.
    ZeroPad([usize; 4]),
}

/// A value computed from the model input.
#[derive(Clone, Debug)]
pub(super) struct Act {
    /// The graph node holding the data (before any pending step).
    pub id: ValueId,
    /// The ONNX per-image dims (everything after the batch). Their product is the node's
    /// element count (after pending steps): views like Flatten and Reshape only change these.
    pub dims: Vec<usize>,
    pub pending: Pending,
    /// The ONNX value whose node made `id`, if `id` is not shared with other values.
    pub owner: Option<String>,
}

#[derive(Clone, Debug)]
pub(super) enum Val {
    Const(Rc<Const>),
    Act(Act),
}

pub(super) struct Importer<'a> {
    pub g: Graph,
    values: HashMap<String, Val>,
    initializers: HashMap<&'a str, &'a TensorProto>,
    external: &'a dyn ExternalData,
    /// The declared batch size, or `BATCH` when symbolic.
    pub batch: i64,
    /// Readers of each ONNX value among the nodes that matter (+1 for the graph output).
    pub uses: HashMap<String, usize>,
    /// Subsampled values already made, by (node, stride).
    subsampled: HashMap<(ValueId, usize), ValueId>,
}

/// The ai.onnx opset the model imports.
pub fn opset_of(model: &ModelProto) -> Result<i64> {
    let v = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .ok_or_else(|| anyhow!("the model imports no ai.onnx opset"))?;
    ensure!(
        v >= 7,
        "opset {v} is too old (opsets 7 and later are supported)"
    );
    if v > 23 {
        log::warn!("opset {v} is newer than the opsets this loader was written for (7..=23)");
    }
    Ok(v)
}

/// Builds the graph of `model`, reading external tensor data through `external`.
pub fn import(model: &ModelProto, external: &dyn ExternalData) -> Result<Graph> {
    let opset = opset_of(model)?;
    let gp = model
        .graph
        .as_ref()
        .ok_or_else(|| anyhow!("not an ONNX model (it has no graph)"))?;
    ensure!(
        gp.sparse_initializer.is_empty(),
        "sparse initializers are not supported"
    );
    let initializers: HashMap<&str, &TensorProto> = gp
        .initializer
        .iter()
        .map(|t| (t.name.as_deref().unwrap_or(""), t))
        .collect();
    let inputs: Vec<&ValueInfoProto> = gp
        .input
        .iter()
        .filter(|i| !initializers.contains_key(i.name.as_deref().unwrap_or("")))
        .collect();
    let input = match inputs[..] {
        [one] => one,
        [] => bail!("the graph has no input"),
        _ => bail!(
            "the graph has {} inputs ({}); only one image input is supported",
            inputs.len(),
            names(inputs.iter().map(|i| i.name.as_deref().unwrap_or("")))
        ),
    };
    let input_name = input.name.clone().unwrap_or_default();
    let (batch, shape) = input_shape(input)?;
    let output = match &gp.output[..] {
        [one] => one.name.clone().unwrap_or_default(),
        [] => bail!("the graph has no output"),
        outs => bail!(
            "the graph has {} outputs ({}); only one is supported",
            outs.len(),
            names(outs.iter().map(|o| o.name.as_deref().unwrap_or("")))
        ),
    };

    let mut available: HashSet<&str> = initializers.keys().copied().collect();
    available.insert(&input_name);
    let order = order(gp, &available, &output)?;
    let mut uses: HashMap<String, usize> = HashMap::new();
    for &i in &order {
        for name in gp.node[i].input.iter().filter(|s| !s.is_empty()) {
            *uses.entry(name.clone()).or_default() += 1;
        }
    }
    *uses.entry(output.clone()).or_default() += 1;

    let mut imp = Importer {
        g: Graph::new(shape),
        values: HashMap::new(),
        initializers,
        external,
        batch,
        uses,
        subsampled: HashMap::new(),
    };
    imp.values.insert(
        input_name,
        Val::Act(Act {
            id: 0,
            dims: shape.to_vec(),
            pending: Pending::None,
            owner: None,
        }),
    );
    for &i in &order {
        let n = NodeRef {
            proto: &gp.node[i],
            opset,
        };
        imp.node(&n)
            .map_err(|e| anyhow!("node '{}' ({}): {e}", n.name(), n.op()))?;
    }
    let out = match imp.get(&output)? {
        Val::Act(a) => imp.materialize(&a, "output")?,
        Val::Const(_) => bail!("the graph output '{output}' does not depend on the input"),
    };
    ensure!(
        out.id != 0,
        "the graph output '{output}' is the input itself"
    );
    imp.g.output = out.id;
    imp.g.validate()?;
    Ok(imp.g)
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
}

/// The input's batch (a number, or `BATCH` when symbolic) and its per-image (C, H, W).
fn input_shape(input: &ValueInfoProto) -> Result<(i64, Shape)> {
    use super::proto::tensor_shape_proto::dimension::Value as Dim;
    use super::proto::type_proto::Value as Type;
    let name = input.name.as_deref().unwrap_or("");
    let Some(Type::TensorType(t)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        bail!("input '{name}' is not a tensor");
    };
    let elem = t.elem_type.unwrap_or(0);
    ensure!(
        elem == 1,
        "input '{name}' holds {}; only float32 inputs are supported",
        super::tensor::type_name(elem)
    );
    let dims = &t
        .shape
        .as_ref()
        .ok_or_else(|| anyhow!("input '{name}' has no shape; its C, H and W must be given"))?
        .dim;
    let dim = |i: usize| match dims[i].value {
        Some(Dim::DimValue(v)) if v > 0 => Some(v),
        _ => None,
    };
    ensure!(
        dims.len() == 4,
        "input '{name}' has rank {}; an NCHW image batch (rank 4) is expected",
        dims.len()
    );
    let mut chw = [0usize; 3];
    for i in 1..4 {
        chw[i - 1] = dim(i).ok_or_else(|| {
            anyhow!(
                "input '{name}' has a symbolic or unknown {} dimension; C, H and W must be fixed \
                 numbers (only the batch may be symbolic)",
                ["", "channel", "height", "width"][i]
            )
        })? as usize;
    }
    crate::tensor::checked_numel(&chw).map_err(|e| anyhow!("input '{name}': {e}"))?;
    Ok((dim(0).unwrap_or(BATCH), chw))
}

/// An input that must be an activation.
pub(super) fn act(ins: &[Option<Val>], i: usize) -> Result<Act> {
    match ins.get(i) {
        Some(Some(Val::Act(a))) => Ok(a.clone()),
        Some(Some(Val::Const(_))) => {
            bail!(
                "input {i} is a constant, but an activation (computed from the input) is expected"
            )
        }
        _ => bail!("input {i} is missing"),
    }
}

/// An input that must be a constant (weights, shapes, axes).
pub(super) fn cst(ins: &[Option<Val>], i: usize, what: &str) -> Result<Rc<Const>> {
    match ins.get(i) {
        Some(Some(Val::Const(c))) => Ok(c.clone()),
        Some(Some(Val::Act(_))) => {
            bail!("{what} (input {i}) is computed from the model input; it must be a constant")
        }
        _ => bail!("{what} (input {i}) is missing"),
    }
}

/// An optional constant input.
pub(super) fn opt_cst(ins: &[Option<Val>], i: usize, what: &str) -> Result<Option<Rc<Const>>> {
    match ins.get(i) {
        Some(Some(_)) => cst(ins, i, what).map(Some),
        _ => Ok(None),
    }
}

impl<'a> Importer<'a> {
    fn get(&mut self, name: &str) -> Result<Val> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        let t = self
            .initializers
            .get(name)
            .ok_or_else(|| anyhow!("value '{name}' is not available"))?;
        let c = decode(t, self.external).map_err(|e| anyhow!("initializer '{name}': {e}"))?;
        let v = Val::Const(Rc::new(c));
        self.values.insert(name.to_string(), v.clone());
        Ok(v)
    }

    fn used(&self, name: &str) -> bool {
        !name.is_empty() && self.uses.get(name).copied().unwrap_or(0) > 0
    }

    fn node(&mut self, n: &NodeRef) -> Result<()> {
        let domain = n.proto.domain.as_deref().unwrap_or("");
        ensure!(
            domain.is_empty() || domain == "ai.onnx",
            "op domain '{domain}' is not supported (only standard ONNX ops are)"
        );
        let ins: Vec<Option<Val>> = n
            .proto
            .input
            .iter()
            .map(|x| {
                if x.is_empty() {
                    Ok(None)
                } else {
                    self.get(x).map(Some)
                }
            })
            .collect::<Result<_>>()?;
        let all_const = ins.iter().flatten().all(|v| matches!(v, Val::Const(_)));
        let outs: Vec<Val> = if all_const && fold::supports(n.op()) {
            let cs: Vec<Option<Rc<Const>>> = ins
                .iter()
                .map(|v| match v {
                    Some(Val::Const(c)) => Some(c.clone()),
                    _ => None,
                })
                .collect();
            fold::eval(n, &cs, self.external)?
                .into_iter()
                .map(|c| Val::Const(Rc::new(c)))
                .collect()
        } else {
            self.activation_op(n, &ins)?
        };
        for (k, name) in n.proto.output.iter().enumerate() {
            match outs.get(k) {
                Some(v) if !name.is_empty() => {
                    self.values.insert(name.clone(), v.clone());
                }
                Some(_) => {}
                None => ensure!(
                    !self.used(name),
                    "output {k} ('{name}') is used, but only the first {} output(s) are supported",
                    outs.len()
                ),
            }
        }
        Ok(())
    }

    /// Carries out a pending subsample (a pending zero pad can only feed a Conv).
    pub(super) fn materialize(&mut self, a: &Act, name: &str) -> Result<Act> {
        match a.pending {
            Pending::None => Ok(a.clone()),
            Pending::Subsample([sh, sw]) => {
                ensure!(
                    sh == sw,
                    "a Slice subsamples height by {sh} but width by {sw}; only equal steps are \
                     supported"
                );
                let c = self.g.shape(a.id)[0];
                let id = match self.subsampled.get(&(a.id, sh)) {
                    Some(&id) => id,
                    None => {
                        let id = self.g.shortcut_a_padded(
                            &format!("{name}/subsample"),
                            a.id,
                            sh,
                            0,
                            c,
                        )?;
                        self.subsampled.insert((a.id, sh), id);
                        id
                    }
                };
                Ok(Act {
                    id,
                    dims: a.dims.clone(),
                    pending: Pending::None,
                    owner: None,
                })
            }
            Pending::ZeroPad(_) => {
                bail!("a zero Pad of height and width is supported only right before a Conv")
            }
        }
    }

    /// Checks that the activation is laid out as NCHW: its ONNX dims are its node's shape
    /// after the pending step (not a reshape of it into other dims).
    pub(super) fn check_nchw(&self, a: &Act) -> Result<()> {
        let [c, h, w] = self.g.shape(a.id);
        let expected = match a.pending {
            Pending::None => [c, h, w],
            Pending::Subsample([sh, sw]) => [c, h.div_ceil(sh), w.div_ceil(sw)],
            Pending::ZeroPad([t, l, b, r]) => [c, h + t + b, w + l + r],
        };
        ensure!(
            a.dims == expected,
            "expects an NCHW activation, but its input has per-image dims {:?} (a reshape of \
             {:?})",
            a.dims,
            expected
        );
        Ok(())
    }

    /// The activation as a plain NCHW value: its node and shape.
    pub(super) fn nchw(&mut self, a: &Act, name: &str) -> Result<(ValueId, Shape)> {
        let a = self.materialize(a, name)?;
        self.check_nchw(&a)?;
        Ok((a.id, self.g.shape(a.id)))
    }

    /// A new activation made by this node's first output.
    pub(super) fn made(&self, n: &NodeRef, id: ValueId, dims: Vec<usize>) -> Val {
        Val::Act(Act {
            id,
            dims,
            pending: Pending::None,
            owner: n.proto.output.first().cloned(),
        })
    }

    /// The same data under new per-image dims.
    pub(super) fn view(&mut self, n: &NodeRef, a: &Act, dims: Vec<usize>) -> Result<Val> {
        let a = self.materialize(a, &n.ir_name())?;
        let count: usize = a.dims.iter().product();
        ensure!(
            dims.iter().product::<usize>() == count,
            "cannot view per-image dims {:?} as {dims:?}",
            a.dims
        );
        Ok(Val::Act(Act {
            dims,
            owner: None,
            ..a
        }))
    }
}
