//! Turns an ONNX graph into our [`Graph`]: nodes in dependency order, every ONNX value either a
//! constant (folded) or an activation, and each activation op mapped onto the IR.

use super::fold::{self, SliceParams, axes_of, shape_slice, squeeze_shape, unsqueeze_shape};
use super::node::{NodeRef, norm_axis};
use super::proto::{GraphProto, ModelProto, TensorProto, ValueInfoProto};
use super::tensor::{BATCH, Const, ExternalData, decode};
use crate::graph::{self, Graph, Shape, ValueId};
use crate::tensor::Tensor;
use anyhow::{Result, anyhow, bail, ensure};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

/// Something an ONNX activation still owes before it is a plain NCHW value: a Slice that
/// subsamples height and width, or a zero Pad of height and width that a Conv will absorb.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pending {
    None,
    /// Every stride-th row and column, starting at 0.
    Subsample([usize; 2]),
    /// Zero rows and columns: top, left, bottom, right.
    ZeroPad([usize; 4]),
}

/// A value computed from the model input.
#[derive(Clone, Debug)]
struct Act {
    /// The graph node holding the data (before any pending step).
    id: ValueId,
    /// The ONNX per-image dims (everything after the batch). Their product is the node's
    /// element count (after pending steps): views like Flatten and Reshape only change these.
    dims: Vec<usize>,
    pending: Pending,
    /// The ONNX value whose node made `id`, if `id` is not shared with other values.
    owner: Option<String>,
}

#[derive(Clone, Debug)]
enum Val {
    Const(Rc<Const>),
    Act(Act),
}

struct Importer<'a> {
    g: Graph,
    values: HashMap<String, Val>,
    initializers: HashMap<&'a str, &'a TensorProto>,
    external: &'a dyn ExternalData,
    /// The declared batch size, or `BATCH` when symbolic.
    batch: i64,
    /// Readers of each ONNX value among the nodes that matter (+1 for the graph output).
    uses: HashMap<String, usize>,
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
        "opset {v} is too old (opsets 9 and later are supported)"
    );
    if v > 23 {
        log::warn!("opset {v} is newer than the opsets this loader was written for (9..=23)");
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

/// The nodes the output depends on, in an order where every value is made before it is read.
/// Refuses values produced twice, inputs nothing produces, and cycles.
fn order(gp: &GraphProto, available: &HashSet<&str>, output: &str) -> Result<Vec<usize>> {
    let label = |i: usize| {
        let n = NodeRef {
            proto: &gp.node[i],
            opset: 0,
        };
        format!("node '{}' ({})", n.name(), n.op())
    };
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in gp.node.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            ensure!(
                !available.contains(o.as_str()) && producer.insert(o, i).is_none(),
                "{}: value '{o}' is produced more than once",
                label(i)
            );
        }
    }
    for (i, n) in gp.node.iter().enumerate() {
        for x in n.input.iter().filter(|x| !x.is_empty()) {
            ensure!(
                available.contains(x.as_str()) || producer.contains_key(x.as_str()),
                "{}: input '{x}' is not produced by any node, initializer or graph input",
                label(i)
            );
        }
    }
    ensure!(
        available.contains(output) || producer.contains_key(output),
        "the graph output '{output}' is not produced by any node"
    );
    // Kahn's algorithm, taking the lowest-numbered ready node first so that a file already in
    // order keeps its order.
    let deps: Vec<BTreeSet<usize>> = gp
        .node
        .iter()
        .map(|n| {
            n.input
                .iter()
                .filter_map(|x| producer.get(x.as_str()).copied())
                .collect()
        })
        .collect();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); gp.node.len()];
    for (i, d) in deps.iter().enumerate() {
        for &p in d {
            readers[p].push(i);
        }
    }
    let mut waiting: Vec<usize> = deps.iter().map(|d| d.len()).collect();
    let mut ready: BTreeSet<usize> = (0..gp.node.len()).filter(|&i| waiting[i] == 0).collect();
    let mut sorted = Vec::with_capacity(gp.node.len());
    while let Some(i) = ready.pop_first() {
        sorted.push(i);
        for &r in &readers[i] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.insert(r);
            }
        }
    }
    if sorted.len() < gp.node.len() {
        let stuck = (0..gp.node.len()).find(|&i| waiting[i] > 0).unwrap();
        bail!("{} is part of a cycle", label(stuck));
    }
    // Keep only what the output needs.
    let mut needed = vec![false; gp.node.len()];
    let mut stack: Vec<usize> = producer.get(output).copied().into_iter().collect();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut needed[i], true) {
            stack.extend(deps[i].iter().copied());
        }
    }
    Ok(sorted.into_iter().filter(|&i| needed[i]).collect())
}

/// An input that must be an activation.
fn act(ins: &[Option<Val>], i: usize) -> Result<Act> {
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
fn cst(ins: &[Option<Val>], i: usize, what: &str) -> Result<Rc<Const>> {
    match ins.get(i) {
        Some(Some(Val::Const(c))) => Ok(c.clone()),
        Some(Some(Val::Act(_))) => {
            bail!("{what} (input {i}) is computed from the model input; it must be a constant")
        }
        _ => bail!("{what} (input {i}) is missing"),
    }
}

/// An optional constant input.
fn opt_cst(ins: &[Option<Val>], i: usize, what: &str) -> Result<Option<Rc<Const>>> {
    match ins.get(i) {
        Some(Some(_)) => cst(ins, i, what).map(Some),
        _ => Ok(None),
    }
}

/// Exactly two spatial values from an attribute (default when absent).
fn pair(n: &NodeRef, attr: &str, default: usize) -> Result<[usize; 2]> {
    match n.ints(attr)? {
        None => Ok([default; 2]),
        Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 0) => Ok([v[0] as usize, v[1] as usize]),
        Some(v) => bail!("{attr} {v:?}: expected two non-negative values (2-D ops only)"),
    }
}

/// Explicit or automatic padding (top, left, bottom, right) of a 2-D window op.
fn window_pads(
    n: &NodeRef,
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> Result<[usize; 4]> {
    let auto = n.string("auto_pad")?.unwrap_or_default();
    match auto.as_str() {
        "" | "NOTSET" => match n.ints("pads")? {
            None => Ok([0; 4]),
            Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => {
                Ok([p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize])
            }
            Some(p) => bail!("pads {p:?}: expected four non-negative values"),
        },
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut pads = [0; 4];
            for d in 0..2 {
                let out = input[d].div_ceil(stride[d]);
                let total = ((out - 1) * stride[d] + kernel[d]).saturating_sub(input[d]);
                let small = total / 2;
                let (lo, hi) = if auto == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                pads[d] = lo;
                pads[d + 2] = hi;
            }
            Ok(pads)
        }
        other => bail!("auto_pad '{other}' is not supported"),
    }
}

/// A per-channel vector from a constant that broadcasts over an activation of per-image `dims`
/// without changing its shape and varies only along the channel axis (dims[0]).
fn per_channel(c: &Const, dims: &[usize]) -> Result<Vec<f32>> {
    let rank = dims.len() + 1;
    ensure!(
        c.shape.len() <= rank,
        "a constant of shape {:?} does not broadcast over per-image dims {dims:?}",
        c.shape
    );
    let mut full = vec![1; rank - c.shape.len()];
    full.extend(&c.shape);
    let channels = dims[0];
    for (i, &d) in full.iter().enumerate() {
        let ok = d == 1 || (i == 1 && d == channels);
        ensure!(
            ok,
            "only per-channel constants are supported here; shape {:?} against per-image dims \
             {dims:?}",
            c.shape
        );
    }
    let v = c.to_f32s()?;
    Ok(if v.len() == channels {
        v
    } else {
        vec![v[0]; channels]
    })
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
    fn materialize(&mut self, a: &Act, name: &str) -> Result<Act> {
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

    /// The activation as a plain NCHW value: its node and shape.
    fn nchw(&mut self, a: &Act, name: &str) -> Result<(ValueId, Shape)> {
        let a = self.materialize(a, name)?;
        let shape = self.g.shape(a.id);
        ensure!(
            a.dims == shape,
            "expects an NCHW activation, but its input has per-image dims {:?}",
            a.dims
        );
        Ok((a.id, shape))
    }

    /// A new activation made by this node's first output.
    fn made(&self, n: &NodeRef, id: ValueId, dims: Vec<usize>) -> Val {
        Val::Act(Act {
            id,
            dims,
            pending: Pending::None,
            owner: n.proto.output.first().cloned(),
        })
    }

    /// The same data under new per-image dims.
    fn view(&mut self, n: &NodeRef, a: &Act, dims: Vec<usize>) -> Result<Val> {
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

    fn activation_op(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Vec<Val>> {
        let name = n.ir_name();
        let out = match n.op() {
            "Conv" => self.conv(n, ins)?,
            "BatchNormalization" => {
                n.check_attrs(&[
                    "epsilon",
                    "momentum",
                    "spatial",
                    "training_mode",
                    "is_test",
                    "consumed_inputs",
                ])?;
                ensure!(
                    n.int("spatial", 1)? == 1,
                    "spatial=0 (per-element statistics) is not supported"
                );
                ensure!(
                    n.int("training_mode", 0)? == 0,
                    "training_mode=1 is not supported (inference only)"
                );
                let a = self.materialize(&act(ins, 0)?, &name)?;
                let channels = self.g.shape(a.id)[0];
                ensure!(
                    a.dims.first() == Some(&channels),
                    "batch norm over per-image dims {:?} is not supported",
                    a.dims
                );
                let vec =
                    |i: usize, what: &str| -> Result<Vec<f32>> { cst(ins, i, what)?.to_f32s() };
                let bn = graph::BatchNorm {
                    gamma: vec(1, "scale")?,
                    beta: vec(2, "bias")?,
                    mean: vec(3, "mean")?,
                    var: vec(4, "var")?,
                    eps: n.float("epsilon", 1e-5)?,
                    relu: false,
                };
                let id = self.g.batch_norm(&name, a.id, bn)?;
                self.made(n, id, a.dims)
            }
            "Relu" => {
                n.check_attrs(&[])?;
                let a = self.materialize(&act(ins, 0)?, &name)?;
                let id = self.g.relu(&name, a.id);
                self.made(n, id, a.dims)
            }
            "MaxPool" => self.max_pool(n, ins)?,
            "AveragePool" => {
                n.check_attrs(&[
                    "auto_pad",
                    "ceil_mode",
                    "count_include_pad",
                    "dilations",
                    "kernel_shape",
                    "pads",
                    "strides",
                ])?;
                let (x, [c, h, w]) = self.nchw(&act(ins, 0)?, &name)?;
                let kernel = pair(n, "kernel_shape", 0)?;
                let pads = window_pads(n, [h, w], kernel, pair(n, "strides", 1)?)?;
                ensure!(
                    kernel == [h, w] && pads == [0; 4],
                    "only an AveragePool over the whole {h}x{w} image is supported (kernel \
                     {kernel:?}, pads {pads:?})"
                );
                let id = self.g.global_avg_pool(&name, x);
                self.made(n, id, vec![c, 1, 1])
            }
            "GlobalAveragePool" => {
                n.check_attrs(&[])?;
                let (x, [c, _, _]) = self.nchw(&act(ins, 0)?, &name)?;
                let id = self.g.global_avg_pool(&name, x);
                self.made(n, id, vec![c, 1, 1])
            }
            "ReduceMean" => {
                let axes_input = opt_cst(ins, 1, "axes")?;
                let axes = axes_of(n, axes_input.as_deref(), 18)?.unwrap_or_default();
                let keep = n.int("keepdims", 1)? != 0;
                let a = act(ins, 0)?;
                if axes.is_empty() && n.int("noop_with_empty_axes", 0)? != 0 {
                    return Ok(vec![Val::Act(a)]);
                }
                let mut axes: Vec<usize> = axes
                    .iter()
                    .map(|&x| norm_axis(x, a.dims.len() + 1))
                    .collect::<Result<_>>()?;
                axes.sort_unstable();
                ensure!(
                    axes == [2, 3] && a.dims.len() == 3,
                    "only a mean over height and width (axes 2 and 3 of NCHW) is supported"
                );
                let (x, [c, _, _]) = self.nchw(&a, &name)?;
                let id = self.g.global_avg_pool(&name, x);
                self.made(n, id, if keep { vec![c, 1, 1] } else { vec![c] })
            }
            "Flatten" => {
                n.check_attrs(&["axis"])?;
                let a = act(ins, 0)?;
                let rank = a.dims.len() + 1;
                let axis = n.int("axis", 1)?;
                let axis = if axis == rank as i64 {
                    rank
                } else {
                    norm_axis(axis, rank)?
                };
                ensure!(
                    axis >= 1 && a.dims[..axis - 1].iter().product::<usize>() == 1,
                    "Flatten with axis {axis} would merge the batch into the features"
                );
                let count = a.dims.iter().product();
                self.view(n, &a, vec![count])?
            }
            "Reshape" => {
                n.check_attrs(&["allowzero"])?;
                let a = act(ins, 0)?;
                let target = cst(ins, 1, "shape")?.to_i64s()?;
                let allowzero = n.int("allowzero", 0)? != 0;
                let dims = self.reshape_dims(&a.dims, &target, allowzero)?;
                self.view(n, &a, dims)?
            }
            "Squeeze" => {
                let axes_input = opt_cst(ins, 1, "axes")?;
                let axes = axes_of(n, axes_input.as_deref(), 13)?;
                let a = act(ins, 0)?;
                let rank = a.dims.len() + 1;
                let dims = match axes {
                    Some(axes) => {
                        let mut shifted = Vec::new();
                        for x in axes {
                            let x = norm_axis(x, rank)?;
                            ensure!(x > 0, "cannot squeeze the batch axis");
                            shifted.push(x as i64 - 1);
                        }
                        squeeze_shape(&a.dims, Some(&shifted))?
                    }
                    None => squeeze_shape(&a.dims, None)?,
                };
                self.view(n, &a, dims)?
            }
            "Unsqueeze" => {
                let axes_input = opt_cst(ins, 1, "axes")?;
                let axes = axes_of(n, axes_input.as_deref(), 13)?
                    .ok_or_else(|| anyhow!("Unsqueeze needs axes"))?;
                let a = act(ins, 0)?;
                let rank = a.dims.len() + 1 + axes.len();
                let mut shifted = Vec::new();
                for x in axes {
                    let x = norm_axis(x, rank)?;
                    ensure!(x > 0, "cannot insert an axis before the batch");
                    shifted.push(x as i64 - 1);
                }
                let dims = unsqueeze_shape(&a.dims, &shifted)?;
                self.view(n, &a, dims)?
            }
            "Gemm" => self.gemm(n, ins)?,
            "MatMul" => {
                n.check_attrs(&[])?;
                let a = self.materialize(&act(ins, 0)?, &name)?;
                let b = cst(ins, 1, "B")?;
                ensure!(
                    a.dims.len() == 1 && b.shape.len() == 2 && b.shape[0] == a.dims[0],
                    "only [batch, K] x constant [K, M] is supported (per-image dims {:?}, B {:?})",
                    a.dims,
                    b.shape
                );
                let (k, m) = (b.shape[0], b.shape[1]);
                let v = b.to_f32s()?;
                let weight = (0..m * k).map(|i| v[(i % k) * m + i / k]).collect();
                let lin = graph::Linear {
                    weight: Tensor::new(vec![m, k], weight)?,
                    bias: None,
                };
                let id = self.g.linear(&name, a.id, lin)?;
                self.made(n, id, vec![m])
            }
            op @ ("Add" | "Sub" | "Mul" | "Div") => {
                n.check_attrs(&[])?;
                self.binary(n, op, ins)?
            }
            "Softmax" => {
                n.check_attrs(&["axis"])?;
                let a = self.materialize(&act(ins, 0)?, &name)?;
                let rank = a.dims.len() + 1;
                let legacy = n.opset < 13;
                let axis = norm_axis(n.int("axis", if legacy { 1 } else { -1 })?, rank)?;
                ensure!(axis > 0, "Softmax over the batch axis is not supported");
                let others: usize = if legacy {
                    a.dims[..axis - 1].iter().product()
                } else {
                    a.dims.iter().product::<usize>() / a.dims[axis - 1]
                };
                ensure!(
                    others == 1,
                    "Softmax on axis {axis} of per-image dims {:?} is not over the whole image's \
                     values, which is the only form supported",
                    a.dims
                );
                let id = self.g.softmax(&name, a.id);
                self.made(n, id, a.dims)
            }
            "Dropout" => {
                n.check_attrs(&["ratio", "seed", "is_test"])?;
                if let Some(t) = opt_cst(ins, 2, "training_mode")? {
                    ensure!(
                        t.to_i64s()?.iter().all(|&v| v == 0),
                        "training_mode=true is not supported (inference only)"
                    );
                }
                Val::Act(act(ins, 0)?)
            }
            "Identity" => {
                n.check_attrs(&[])?;
                Val::Act(act(ins, 0)?)
            }
            "Cast" => {
                n.check_attrs(&["to", "saturate", "round_mode"])?;
                let to = n.int("to", 0)?;
                ensure!(
                    to == 1,
                    "casting an activation to {} is not supported",
                    super::tensor::type_name(to as i32)
                );
                Val::Act(act(ins, 0)?)
            }
            "Shape" => {
                n.check_attrs(&["start", "end"])?;
                let a = act(ins, 0)?;
                let mut dims = vec![self.batch];
                dims.extend(a.dims.iter().map(|&d| d as i64));
                Val::Const(Rc::new(shape_slice(n, dims)?))
            }
            "Slice" => self.slice(n, ins)?,
            "Pad" => self.pad(n, ins)?,
            op if fold::supports(op) => bail!("{op} of an activation is not supported"),
            op => bail!("op {op} is not supported"),
        };
        Ok(vec![out])
    }

    /// Reshape's target for an activation: the first entry must be the batch (symbolic, 0, -1
    /// or the declared number), the rest gives the new per-image dims.
    fn reshape_dims(&self, dims: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>> {
        let Some((&first, rest)) = target.split_first() else {
            bail!("cannot reshape an activation to a scalar");
        };
        let is_batch = first == BATCH
            || (first == 0 && !allowzero)
            || (self.batch != BATCH && first == self.batch);
        ensure!(
            is_batch || first == -1,
            "target shape {} does not keep the batch as its first dimension",
            show_shape(target)
        );
        if first == -1 {
            ensure!(
                !rest.contains(&-1),
                "target shape {} has two inferred dimensions",
                show_shape(target)
            );
        }
        fold::reshape_shape(dims, rest, allowzero).map_err(|_| {
            anyhow!(
                "cannot reshape per-image dims {dims:?} to {}",
                show_shape(target)
            )
        })
    }

    fn conv(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Val> {
        let name = n.ir_name();
        n.check_attrs(&[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ])?;
        let group = n.int("group", 1)?;
        ensure!(
            group == 1,
            "grouped convolution (group {group}) is not supported"
        );
        ensure!(
            pair(n, "dilations", 1)? == [1, 1],
            "dilated convolution (dilations {:?}) is not supported",
            n.ints("dilations")?.unwrap_or_default()
        );
        let w = cst(ins, 1, "weight")?;
        ensure!(
            w.shape.len() == 4,
            "only 2-D convolutions are supported (weight shape {:?})",
            w.shape
        );
        let kernel = [w.shape[2], w.shape[3]];
        if let Some(k) = n.ints("kernel_shape")? {
            ensure!(
                k.len() == 2 && k[0] as usize == kernel[0] && k[1] as usize == kernel[1],
                "kernel_shape {k:?} disagrees with the weight shape {:?}",
                w.shape
            );
        }
        let stride = pair(n, "strides", 1)?;
        ensure!(stride[0] > 0 && stride[1] > 0, "stride 0");
        let a = act(ins, 0)?;
        let (a, extra) = match a.pending {
            Pending::ZeroPad(p) => (
                Act {
                    pending: Pending::None,
                    ..a
                },
                p,
            ),
            _ => (self.materialize(&a, &name)?, [0; 4]),
        };
        let [_, h, wd] = self.g.shape(a.id);
        let padded = [h + extra[0] + extra[2], wd + extra[1] + extra[3]];
        let pads = window_pads(n, padded, kernel, stride)?;
        let pad = [
            pads[0] + extra[0],
            pads[1] + extra[1],
            pads[2] + extra[2],
            pads[3] + extra[3],
        ];
        let bias = opt_cst(ins, 2, "bias")?.map(|b| b.to_f32s()).transpose()?;
        let conv = graph::Conv {
            weight: Tensor::new(w.shape.clone(), w.to_f32s()?)?,
            bias,
            stride,
            pad,
            relu: false,
        };
        let id = self.g.conv(&name, a.id, conv)?;
        Ok(self.made(n, id, self.g.shape(id).to_vec()))
    }

    fn max_pool(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Val> {
        let name = n.ir_name();
        n.check_attrs(&[
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "pads",
            "storage_order",
            "strides",
        ])?;
        ensure!(
            pair(n, "dilations", 1)? == [1, 1],
            "dilated max pooling is not supported"
        );
        let kernel = pair(n, "kernel_shape", 0)?;
        ensure!(
            kernel[0] > 0 && kernel[1] > 0,
            "kernel_shape must be two positive values"
        );
        let stride = pair(n, "strides", 1)?;
        ensure!(stride[0] > 0 && stride[1] > 0, "stride 0");
        let (x, [c, h, w]) = self.nchw(&act(ins, 0)?, &name)?;
        let mut pad = window_pads(n, [h, w], kernel, stride)?;
        if n.int("ceil_mode", 0)? != 0 {
            // Ceil mode adds a last window where the floor formula has none; padding counts as
            // -inf, so extra bottom/right padding gives the same result, provided that the last
            // window still starts inside the input (as PyTorch and ONNX require).
            for (d, size) in [h, w].into_iter().enumerate() {
                let span = size + pad[d] + pad[d + 2];
                ensure!(
                    span >= kernel[d],
                    "the kernel is larger than the padded input"
                );
                let rem = (span - kernel[d]) % stride[d];
                if rem != 0 {
                    let out = (span - kernel[d]) / stride[d] + 2;
                    ensure!(
                        (out - 1) * stride[d] < size + pad[d],
                        "ceil_mode=1 makes a last window that starts in the padding; not supported"
                    );
                    pad[d + 2] += stride[d] - rem;
                }
            }
        }
        let pool = graph::MaxPool {
            kernel,
            stride,
            pad,
        };
        let id = self.g.max_pool(&name, x, pool)?;
        Ok(self.made(n, id, vec![c, self.g.shape(id)[1], self.g.shape(id)[2]]))
    }

    fn gemm(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Val> {
        let name = n.ir_name();
        n.check_attrs(&["alpha", "beta", "transA", "transB", "broadcast"])?;
        ensure!(n.int("transA", 0)? == 0, "transA=1 is not supported");
        let trans_b = n.int("transB", 0)? != 0;
        let (alpha, beta) = (n.float("alpha", 1.0)?, n.float("beta", 1.0)?);
        let a = self.materialize(&act(ins, 0)?, &name)?;
        let b = cst(ins, 1, "B")?;
        ensure!(b.shape.len() == 2, "B must be 2-D, got {:?}", b.shape);
        let (k, m) = if trans_b {
            (b.shape[1], b.shape[0])
        } else {
            (b.shape[0], b.shape[1])
        };
        ensure!(
            a.dims.len() == 1 && a.dims[0] == k,
            "A must be [batch, {k}], but its per-image dims are {:?} (flatten it first)",
            a.dims
        );
        let v = b.to_f32s()?;
        let weight: Vec<f32> = if trans_b {
            v.iter().map(|&x| x * alpha).collect()
        } else {
            (0..m * k).map(|i| v[(i % k) * m + i / k] * alpha).collect()
        };
        let bias = match opt_cst(ins, 2, "C")? {
            Some(c) => {
                let ok = c.len() == 1
                    || (c.len() == m && c.shape.last() == Some(&m) && c.shape.len() <= 2);
                ensure!(ok, "C of shape {:?} is not a bias of {m} outputs", c.shape);
                let v = c.to_f32s()?;
                Some(
                    (0..m)
                        .map(|i| v[if v.len() == 1 { 0 } else { i }] * beta)
                        .collect(),
                )
            }
            None => None,
        };
        let lin = graph::Linear {
            weight: Tensor::new(vec![m, k], weight)?,
            bias,
        };
        let id = self.g.linear(&name, a.id, lin)?;
        Ok(self.made(n, id, vec![m]))
    }

    /// Add/Sub/Mul/Div: the sum of two activations, or a per-channel constant applied to one
    /// (folded into the producing Conv / Gemm bias where possible, else a per-channel affine).
    fn binary(&mut self, n: &NodeRef, op: &str, ins: &[Option<Val>]) -> Result<Val> {
        let name = n.ir_name();
        let (a_in, b_in) = match (ins.first(), ins.get(1)) {
            (Some(Some(a)), Some(Some(b))) => (a.clone(), b.clone()),
            _ => bail!("{op} needs two inputs"),
        };
        let (x, c, act_first) = match (a_in, b_in) {
            (Val::Act(a), Val::Act(b)) => {
                ensure!(op == "Add", "{op} of two activations is not supported");
                let a = self.materialize(&a, &format!("{name}/a"))?;
                let b = self.materialize(&b, &format!("{name}/b"))?;
                ensure!(
                    a.dims == b.dims,
                    "cannot add per-image dims {:?} and {:?} (broadcasting is not supported)",
                    a.dims,
                    b.dims
                );
                let id = self.g.add(&name, a.id, b.id, false)?;
                return Ok(self.made(n, id, a.dims));
            }
            (Val::Act(a), Val::Const(c)) => (a, c, true),
            (Val::Const(c), Val::Act(a)) => (a, c, false),
            _ => unreachable!("constant operands are folded"),
        };
        let x = self.materialize(&x, &name)?;
        let shape = self.g.shape(x.id);
        ensure!(
            x.dims.first() == Some(&shape[0]),
            "{op} with a constant over per-image dims {:?} is not supported",
            x.dims
        );
        let v = per_channel(&c, &x.dims)?;
        let channels = v.len();
        let (scale, shift): (Vec<f32>, Vec<f32>) = match (op, act_first) {
            ("Add", _) => (vec![1.0; v.len()], v),
            ("Sub", true) => (vec![1.0; v.len()], v.iter().map(|t| -t).collect()),
            ("Sub", false) => (vec![-1.0; v.len()], v),
            ("Mul", _) => (v.clone(), vec![0.0; v.len()]),
            ("Div", true) => (v.iter().map(|t| 1.0 / t).collect(), vec![0.0; v.len()]),
            _ => bail!("dividing a constant by an activation is not supported"),
        };
        // A bias after MatMul or Conv: fold it in when nothing else reads the product.
        let input_name = &n.proto.input[if act_first { 0 } else { 1 }];
        let sole_reader = x.owner.as_deref() == Some(input_name.as_str())
            && self.uses.get(input_name).copied() == Some(1);
        if sole_reader && scale.iter().all(|&s| s == 1.0) {
            let single_input = self.g.nodes[x.id].inputs.len() == 1;
            let bias = match &mut self.g.nodes[x.id].op {
                graph::Op::Linear(l) => Some(&mut l.bias),
                graph::Op::Conv(c) if !c.relu && single_input => Some(&mut c.bias),
                _ => None,
            };
            if let Some(bias) = bias {
                let b = bias.get_or_insert_with(|| vec![0.0; shift.len()]);
                b.iter_mut().zip(&shift).for_each(|(b, s)| *b += s);
                return Ok(Val::Act(Act {
                    owner: n.proto.output.first().cloned(),
                    ..x
                }));
            }
        }
        let bn = graph::BatchNorm {
            gamma: scale,
            beta: shift,
            mean: vec![0.0; channels],
            var: vec![1.0; channels],
            eps: 0.0,
            relu: false,
        };
        let id = self.g.batch_norm(&name, x.id, bn)?;
        Ok(self.made(n, id, x.dims))
    }

    /// Slice of an activation: only every k-th row / column of height and width from the start
    /// (the option-A shortcut's subsampling); channels and batch untouched.
    fn slice(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Val> {
        let a = act(ins, 0)?;
        let consts = (0..ins.len())
            .map(|i| {
                if i == 0 {
                    Ok(None)
                } else {
                    opt_cst(ins, i, "slice bounds")
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let p = SliceParams::from_node(n, &consts)?;
        ensure!(
            a.dims.len() == 3,
            "Slice of per-image dims {:?} is not supported",
            a.dims
        );
        let base = match a.pending {
            Pending::None => [1, 1],
            Pending::Subsample(s) => s,
            Pending::ZeroPad(_) => bail!("Slice after a zero Pad is not supported"),
        };
        // The batch is unknown: give it a size no real slice bound reaches.
        let huge = 1i64 << 40;
        let mut full = vec![huge as usize];
        full.extend(&a.dims);
        let ranges = p.ranges(&full)?;
        let whole = |r: &fold::Range1, d: usize| r.start == 0 && r.step == 1 && r.count == d;
        ensure!(
            whole(&ranges[0], huge as usize) && whole(&ranges[1], a.dims[0]),
            "only slicing height and width is supported, not the batch or the channels"
        );
        let mut stride = base;
        let mut dims = a.dims.clone();
        for k in 0..2 {
            let (r, d) = (ranges[k + 2], a.dims[k + 1]);
            ensure!(
                r.start == 0 && r.step > 0 && r.count == d.div_ceil(r.step as usize),
                "only a Slice that keeps every k-th row or column from the first to the end is \
                 supported (axis {}: start {}, step {}, {} of {d})",
                k + 2,
                r.start,
                r.step,
                r.count
            );
            stride[k] *= r.step as usize;
            dims[k + 1] = r.count;
        }
        if stride == [1, 1] {
            return Ok(Val::Act(a));
        }
        Ok(Val::Act(Act {
            id: a.id,
            dims,
            pending: Pending::Subsample(stride),
            owner: None,
        }))
    }

    /// Pad of an activation: zero channels (the option-A shortcut, after a subsampling Slice or
    /// not), or zero rows and columns that the next Conv absorbs.
    fn pad(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Val> {
        let name = n.ir_name();
        let a = act(ins, 0)?;
        ensure!(
            a.dims.len() == 3,
            "Pad of per-image dims {:?} is not supported",
            a.dims
        );
        let (mode, pads, value, axes) = if n.opset < 11 {
            n.check_attrs(&["mode", "pads", "value", "paddings"])?;
            let pads = match n.ints("pads")? {
                Some(p) => p,
                None => n
                    .ints("paddings")?
                    .ok_or_else(|| anyhow!("Pad needs pads"))?,
            };
            (n.string("mode")?, pads, n.float("value", 0.0)?, None)
        } else {
            n.check_attrs(&["mode"])?;
            let pads = cst(ins, 1, "pads")?.to_known_i64s("the pads")?;
            let value = match opt_cst(ins, 2, "constant_value")? {
                Some(v) => v.scalar_f32()?,
                None => 0.0,
            };
            let axes = opt_cst(ins, 3, "axes")?
                .map(|c| c.to_known_i64s("the axes"))
                .transpose()?;
            (n.string("mode")?, pads, value, axes)
        };
        let axes: Vec<usize> = match axes {
            Some(ax) => ax.iter().map(|&x| norm_axis(x, 4)).collect::<Result<_>>()?,
            None => (0..4).collect(),
        };
        ensure!(
            pads.len() == 2 * axes.len(),
            "pads {pads:?} do not match {} axes",
            axes.len()
        );
        let (mut begin, mut end) = ([0usize; 4], [0usize; 4]);
        for (k, &ax) in axes.iter().enumerate() {
            let (b, e) = (pads[k], pads[k + axes.len()]);
            ensure!(
                b >= 0 && e >= 0,
                "negative pads {pads:?} (cropping) are not supported"
            );
            begin[ax] = b as usize;
            end[ax] = e as usize;
        }
        if begin == [0; 4] && end == [0; 4] {
            return Ok(Val::Act(a));
        }
        let mode = mode.unwrap_or_else(|| "constant".into());
        ensure!(
            mode == "constant",
            "Pad mode '{mode}' is not supported (only constant zero padding)"
        );
        ensure!(
            value == 0.0,
            "padding with {value} is not supported (only zeros)"
        );
        ensure!(
            begin[0] == 0 && end[0] == 0,
            "padding the batch axis is not supported"
        );
        let channels = begin[1] + end[1] > 0;
        let spatial = begin[2] + begin[3] + end[2] + end[3] > 0;
        ensure!(
            !(channels && spatial),
            "padding channels and height/width at once is not supported"
        );
        if channels {
            let stride = match a.pending {
                Pending::None => 1,
                Pending::Subsample([sh, sw]) if sh == sw => sh,
                Pending::Subsample([sh, sw]) => bail!(
                    "the padded value is subsampled by {sh} in height but {sw} in width; only \
                     equal steps are supported"
                ),
                Pending::ZeroPad(_) => bail!("Pad after a zero Pad is not supported"),
            };
            let c = a.dims[0];
            let out = c + begin[1] + end[1];
            let id = self
                .g
                .shortcut_a_padded(&name, a.id, stride, begin[1], out)?;
            return Ok(self.made(n, id, vec![out, a.dims[1], a.dims[2]]));
        }
        let a = match a.pending {
            Pending::Subsample(_) => self.materialize(&a, &name)?,
            _ => a,
        };
        let mut pad = match a.pending {
            Pending::ZeroPad(p) => p,
            _ => [0; 4],
        };
        pad[0] += begin[2];
        pad[1] += begin[3];
        pad[2] += end[2];
        pad[3] += end[3];
        let dims = vec![
            a.dims[0],
            a.dims[1] + begin[2] + end[2],
            a.dims[2] + begin[3] + end[3],
        ];
        Ok(Val::Act(Act {
            id: a.id,
            dims,
            pending: Pending::ZeroPad(pad),
            owner: None,
        }))
    }
}

/// A shape tensor for messages, with the batch placeholder shown as N.
fn show_shape(v: &[i64]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|&d| {
            if d == BATCH {
                "N".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}
