//! The activation ops: each ONNX op applied to values computed from the input becomes nodes of
//! our graph (or a view of an existing node), with a one-line reason when it cannot.

use super::fold::{self, axes_of, shape_slice, squeeze_shape, unsqueeze_shape};
use super::import::{Act, Importer, Pending, Val, act, cst, opt_cst};
use super::node::{NodeRef, norm_axis};
use super::tensor::{BATCH, Const};
use crate::graph;
use crate::tensor::Tensor;
use anyhow::{Result, anyhow, bail, ensure};
use std::rc::Rc;

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

impl Importer<'_> {
    pub(super) fn activation_op(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Vec<Val>> {
        let name = n.ir_name();
        let out = match n.op() {
            "Conv" => self.conv(n, ins)?,
            "BatchNormalization" => self.batch_norm(n, ins)?,
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
            "Gather" => self.gather(n, ins)?,
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

    /// Inference batch norm; the graph passes fold it into a preceding conv where they can.
    fn batch_norm(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Val> {
        let name = n.ir_name();
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
        let param = |i: usize, what: &str| -> Result<Vec<f32>> { cst(ins, i, what)?.to_f32s() };
        let bn = graph::BatchNorm {
            gamma: param(1, "scale")?,
            beta: param(2, "bias")?,
            mean: param(3, "mean")?,
            var: param(4, "var")?,
            eps: n.float("epsilon", 1e-5)?,
            relu: false,
        };
        let id = self.g.batch_norm(&name, a.id, bn)?;
        Ok(self.made(n, id, a.dims))
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
        self.check_nchw(&a)?;
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
