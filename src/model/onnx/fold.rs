//! Constant folding: evaluates ops whose inputs are all constants, so that shape subgraphs
//! (Shape -> Gather -> Concat -> Reshape ..., as exporters write them) become plain constants
//! before the activation ops are matched. Integer shape values may hold the batch placeholder
//! `BATCH`, which data movement keeps and arithmetic refuses.

use super::node::{NodeRef, norm_axis};
use super::tensor::{Const, Data, ExternalData, MAX_FOLDED, decode};
use crate::tensor::checked_numel;
use anyhow::{Result, anyhow, bail, ensure};
use std::rc::Rc;

/// The ops this module evaluates.
pub fn supports(op: &str) -> bool {
    matches!(
        op,
        "Constant"
            | "Identity"
            | "Dropout"
            | "Cast"
            | "CastLike"
            | "Shape"
            | "Size"
            | "Gather"
            | "Slice"
            | "Concat"
            | "Unsqueeze"
            | "Squeeze"
            | "Reshape"
            | "Flatten"
            | "Transpose"
            | "ConstantOfShape"
            | "Expand"
            | "Add"
            | "Sub"
            | "Mul"
            | "Div"
            | "Neg"
            | "Sqrt"
            | "Reciprocal"
            | "Equal"
            | "Less"
            | "Greater"
            | "Not"
            | "Where"
            | "Range"
    )
}

/// Evaluates `n` on constant inputs (absent optional inputs are `None`).
pub fn eval(
    n: &NodeRef,
    inputs: &[Option<Rc<Const>>],
    external: &dyn ExternalData,
) -> Result<Vec<Const>> {
    let input = |i: usize| -> Result<&Const> {
        inputs
            .get(i)
            .and_then(|x| x.as_deref())
            .ok_or_else(|| anyhow!("input {i} is missing"))
    };
    let opt = |i: usize| inputs.get(i).and_then(|x| x.as_deref());
    let out = match n.op() {
        "Constant" => constant(n, external)?,
        "Identity" => {
            n.check_attrs(&[])?;
            input(0)?.clone()
        }
        "Dropout" => {
            n.check_attrs(&["ratio", "seed", "is_test"])?;
            input(0)?.clone()
        }
        "Cast" => {
            n.check_attrs(&["to", "saturate", "round_mode"])?;
            cast(input(0)?, n.int("to", 0)? as i32)?
        }
        "CastLike" => {
            n.check_attrs(&["saturate", "round_mode"])?;
            let code = match input(1)?.data {
                Data::F32(_) => 1,
                Data::I64(_) => 7,
                Data::Bool(_) => 9,
            };
            cast(input(0)?, code)?
        }
        "Shape" => {
            n.check_attrs(&["start", "end"])?;
            let dims: Vec<i64> = input(0)?.shape.iter().map(|&d| d as i64).collect();
            shape_slice(n, dims)?
        }
        "Size" => {
            n.check_attrs(&[])?;
            Const::new(vec![], Data::I64(vec![input(0)?.len() as i64]))?
        }
        "Gather" => {
            n.check_attrs(&["axis"])?;
            gather(input(0)?, input(1)?, n.int("axis", 0)?)?
        }
        "Slice" => {
            let x = input(0)?;
            let p = SliceParams::from_node(n, inputs)?;
            let ranges = p.ranges(&x.shape)?;
            strided(x, &ranges)?
        }
        "Concat" => {
            n.check_attrs(&["axis"])?;
            let parts: Vec<&Const> = inputs.iter().flatten().map(|c| c.as_ref()).collect();
            concat(&parts, n.int("axis", 0)?)?
        }
        "Unsqueeze" => {
            let x = input(0)?;
            let axes = axes_of(n, opt(1), 13)?.ok_or_else(|| anyhow!("Unsqueeze needs axes"))?;
            reshaped(x, unsqueeze_shape(&x.shape, &axes)?)?
        }
        "Squeeze" => {
            let x = input(0)?;
            let axes = axes_of(n, opt(1), 13)?;
            reshaped(x, squeeze_shape(&x.shape, axes.as_deref())?)?
        }
        "Reshape" => {
            n.check_attrs(&["allowzero"])?;
            let x = input(0)?;
            let target = input(1)?.to_known_i64s("the target shape")?;
            let shape = reshape_shape(&x.shape, &target, n.int("allowzero", 0)? != 0)?;
            reshaped(x, shape)?
        }
        "Flatten" => {
            n.check_attrs(&["axis"])?;
            let x = input(0)?;
            let axis = n.int("axis", 1)?;
            let axis = if axis < 0 {
                norm_axis(axis, x.shape.len())?
            } else {
                axis as usize
            };
            ensure!(axis <= x.shape.len(), "axis {axis} is out of range");
            let a: usize = x.shape[..axis].iter().product();
            let b: usize = x.shape[axis..].iter().product();
            reshaped(x, vec![a, b])?
        }
        "Transpose" => {
            n.check_attrs(&["perm"])?;
            let x = input(0)?;
            let perm = match n.ints("perm")? {
                Some(p) => p,
                None => (0..x.shape.len() as i64).rev().collect(),
            };
            transpose(x, &perm)?
        }
        "ConstantOfShape" => {
            n.check_attrs(&["value"])?;
            let shape = dims_of(&input(0)?.to_known_i64s("the shape")?)?;
            let value = match n.tensor("value")? {
                Some(t) => decode(t, external)?,
                None => Const::new(vec![1], Data::F32(vec![0.0]))?,
            };
            ensure!(value.len() == 1, "value must hold one element");
            let len = folded_len(&shape)?;
            Const::new(shape, value.data.splat(len))?
        }
        "Expand" => {
            n.check_attrs(&[])?;
            let x = input(0)?;
            let target = dims_of(&input(1)?.to_known_i64s("the shape")?)?;
            let shape = broadcast_shape(&x.shape, &target)?;
            folded_len(&shape)?;
            let idx = broadcast_index(&x.shape, &shape);
            Const::new(shape, x.data.take(&idx))?
        }
        op @ ("Add" | "Sub" | "Mul" | "Div") => {
            n.check_attrs(&[])?;
            arithmetic(op, input(0)?, input(1)?)?
        }
        op @ ("Equal" | "Less" | "Greater") => {
            n.check_attrs(&[])?;
            compare(op, input(0)?, input(1)?)?
        }
        "Neg" => {
            n.check_attrs(&[])?;
            let x = input(0)?;
            let data = match &x.data {
                Data::F32(v) => Data::F32(v.iter().map(|a| -a).collect()),
                Data::I64(_) => Data::I64(
                    x.to_known_i64s("values")?
                        .iter()
                        .map(|a| a.checked_neg().ok_or_else(|| anyhow!("overflow")))
                        .collect::<Result<_>>()?,
                ),
                Data::Bool(_) => bail!("Neg of a bool tensor"),
            };
            Const::new(x.shape.clone(), data)?
        }
        op @ ("Sqrt" | "Reciprocal") => {
            n.check_attrs(&[])?;
            let x = input(0)?;
            let Data::F32(v) = &x.data else {
                bail!("{op} of a {} tensor", x.data.type_name());
            };
            let f = if op == "Sqrt" { f32::sqrt } else { f32::recip };
            Const::new(
                x.shape.clone(),
                Data::F32(v.iter().map(|&a| f(a)).collect()),
            )?
        }
        "Not" => {
            n.check_attrs(&[])?;
            let x = input(0)?;
            let Data::Bool(v) = &x.data else {
                bail!("Not of a {} tensor", x.data.type_name());
            };
            Const::new(x.shape.clone(), Data::Bool(v.iter().map(|b| !b).collect()))?
        }
        "Where" => {
            n.check_attrs(&[])?;
            where_(input(0)?, input(1)?, input(2)?)?
        }
        "Range" => {
            n.check_attrs(&[])?;
            range(input(0)?, input(1)?, input(2)?)?
        }
        other => bail!("cannot evaluate {other} on constants"),
    };
    Ok(vec![out])
}

/// A `Constant` node's value, from whichever attribute holds it.
fn constant(n: &NodeRef, external: &dyn ExternalData) -> Result<Const> {
    n.check_attrs(&[
        "value",
        "value_float",
        "value_floats",
        "value_int",
        "value_ints",
    ])
    .map_err(|e| anyhow!("{e} (sparse and string constants are not supported)"))?;
    if let Some(t) = n.tensor("value")? {
        return decode(t, external);
    }
    if n.has_attr("value_float") {
        return Const::new(vec![], Data::F32(vec![n.float("value_float", 0.0)?]));
    }
    if let Some(v) = n.floats("value_floats")? {
        return Ok(Const {
            shape: vec![v.len()],
            data: Data::F32(v),
        });
    }
    if n.has_attr("value_int") {
        return Const::new(vec![], Data::I64(vec![n.int("value_int", 0)?]));
    }
    if let Some(v) = n.ints("value_ints")? {
        return Ok(Const::ints(v));
    }
    bail!("Constant has no value")
}

/// Shape's optional start/end attributes (opset 15).
pub fn shape_slice(n: &NodeRef, dims: Vec<i64>) -> Result<Const> {
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(n.int("start", 0)?);
    let end = clamp(n.int("end", r)?);
    Ok(Const::ints(dims[start..end.max(start)].to_vec()))
}

/// Elements a folded constant of this shape would have, refusing absurd sizes.
fn folded_len(shape: &[usize]) -> Result<usize> {
    let n = checked_numel(shape)?;
    ensure!(
        n <= MAX_FOLDED,
        "a computed constant of shape {shape:?} is too large"
    );
    Ok(n)
}

/// Non-negative shape values as sizes.
pub fn dims_of(v: &[i64]) -> Result<Vec<usize>> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| anyhow!("invalid dimension {d} in {v:?}")))
        .collect()
}

/// The axes of Squeeze / Unsqueeze / ReduceMean: an attribute before `input_from`, an input since.
pub fn axes_of(n: &NodeRef, input: Option<&Const>, input_from: i64) -> Result<Option<Vec<i64>>> {
    if n.opset < input_from {
        n.check_attrs(&["axes", "keepdims", "noop_with_empty_axes"])?;
        n.ints("axes")
    } else {
        n.check_attrs(&["keepdims", "noop_with_empty_axes"])?;
        input.map(|c| c.to_known_i64s("the axes")).transpose()
    }
}

fn reshaped(x: &Const, shape: Vec<usize>) -> Result<Const> {
    Const::new(shape, x.data.clone())
}

pub fn unsqueeze_shape(shape: &[usize], axes: &[i64]) -> Result<Vec<usize>> {
    let rank = shape.len() + axes.len();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect::<Result<_>>()?;
    axes.sort_unstable();
    ensure!(
        axes.windows(2).all(|w| w[0] != w[1]),
        "repeated axes in {axes:?}"
    );
    let mut rest = shape.iter();
    Ok((0..rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                *rest.next().unwrap()
            }
        })
        .collect())
}

pub fn squeeze_shape(shape: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>> {
    let axes: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&a| norm_axis(a, shape.len()))
            .collect::<Result<_>>()?,
        None => (0..shape.len()).filter(|&i| shape[i] == 1).collect(),
    };
    for &a in &axes {
        ensure!(
            shape[a] == 1,
            "cannot squeeze axis {a} of size {} (shape {shape:?})",
            shape[a]
        );
    }
    Ok((0..shape.len())
        .filter(|i| !axes.contains(i))
        .map(|i| shape[i])
        .collect())
}

/// Reshape's target with 0 (copy, unless allowzero) and one -1 (inferred) resolved.
pub fn reshape_shape(shape: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let total = checked_numel(shape)?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*shape.get(i).ok_or_else(|| {
                anyhow!("target {target:?} copies a dimension that {shape:?} lacks")
            })?),
            t if t >= 0 => out.push(t as usize),
            _ => bail!("invalid target shape {target:?}"),
        }
    }
    let known = checked_numel(&out)?;
    if let Some(i) = infer {
        ensure!(
            known > 0 && total.is_multiple_of(known),
            "cannot reshape {shape:?} to {target:?}"
        );
        out[i] = total / known;
    } else {
        ensure!(known == total, "cannot reshape {shape:?} to {target:?}");
    }
    Ok(out)
}

/// Row-major strides of a shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Calls `f` with every multi-index of `shape`, in row-major order.
fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut idx = vec![0; shape.len()];
    loop {
        f(&idx);
        let mut d = shape.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Slice parameters as ONNX states them (before clamping).
pub struct SliceParams {
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    pub axes: Option<Vec<i64>>,
    pub steps: Option<Vec<i64>>,
}

/// One axis of a slice after clamping: first index, step, element count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range1 {
    pub start: i64,
    pub step: i64,
    pub count: usize,
}

impl SliceParams {
    /// From attributes (opset < 10) or constant inputs 1..4 (opset >= 10).
    pub fn from_node(n: &NodeRef, inputs: &[Option<Rc<Const>>]) -> Result<Self> {
        if n.opset < 10 {
            n.check_attrs(&["starts", "ends", "axes"])?;
            return Ok(Self {
                starts: n
                    .ints("starts")?
                    .ok_or_else(|| anyhow!("Slice needs starts"))?,
                ends: n.ints("ends")?.ok_or_else(|| anyhow!("Slice needs ends"))?,
                axes: n.ints("axes")?,
                steps: None,
            });
        }
        n.check_attrs(&[])?;
        let get = |i: usize, what: &str| -> Result<Option<Vec<i64>>> {
            inputs
                .get(i)
                .and_then(|x| x.as_deref())
                .map(|c| c.to_known_i64s(what))
                .transpose()
        };
        Ok(Self {
            starts: get(1, "the starts")?.ok_or_else(|| anyhow!("Slice needs starts"))?,
            ends: get(2, "the ends")?.ok_or_else(|| anyhow!("Slice needs ends"))?,
            axes: get(3, "the axes")?,
            steps: get(4, "the steps")?,
        })
    }

    /// The clamped range of every axis of a tensor of `shape` (untouched axes are whole).
    pub fn ranges(&self, shape: &[usize]) -> Result<Vec<Range1>> {
        let rank = shape.len();
        let k = self.starts.len();
        let axes: Vec<usize> = match &self.axes {
            Some(a) => a
                .iter()
                .map(|&a| norm_axis(a, rank))
                .collect::<Result<_>>()?,
            None => (0..k).collect(),
        };
        let steps = self.steps.clone().unwrap_or_else(|| vec![1; k]);
        ensure!(
            self.ends.len() == k && axes.len() == k && steps.len() == k,
            "starts, ends, axes and steps differ in length"
        );
        let mut out: Vec<Range1> = shape
            .iter()
            .map(|&d| Range1 {
                start: 0,
                step: 1,
                count: d,
            })
            .collect();
        let mut seen = vec![false; rank];
        for i in 0..k {
            let (a, step) = (axes[i], steps[i]);
            ensure!(k <= rank && a < rank, "axis {a} is out of range");
            ensure!(!seen[a], "axis {a} is sliced twice");
            seen[a] = true;
            ensure!(step != 0, "slice step 0");
            out[a] = range1(shape[a] as i64, self.starts[i], self.ends[i], step);
        }
        Ok(out)
    }
}

/// ONNX Slice clamping for one axis of size `d`.
pub fn range1(d: i64, start: i64, end: i64, step: i64) -> Range1 {
    if d <= 0 {
        return Range1 {
            start: 0,
            step,
            count: 0,
        };
    }
    let wrap = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = (wrap(start), wrap(end));
    let (s, count) = if step > 0 {
        let s = s.clamp(0, d);
        let e = e.clamp(0, d);
        (s, if e > s { (e - s + step - 1) / step } else { 0 })
    } else {
        let s = s.clamp(0, d - 1);
        let e = e.clamp(-1, d - 1);
        let st = -step;
        (s, if s > e { (s - e + st - 1) / st } else { 0 })
    };
    Range1 {
        start: s,
        step,
        count: count as usize,
    }
}

/// The elements selected by per-axis ranges.
fn strided(x: &Const, ranges: &[Range1]) -> Result<Const> {
    let shape: Vec<usize> = ranges.iter().map(|r| r.count).collect();
    folded_len(&shape)?;
    let st = strides(&x.shape);
    let mut idx = Vec::new();
    for_each_index(&shape, |i| {
        idx.push(
            i.iter()
                .zip(ranges)
                .zip(&st)
                .map(|((&k, r), &s)| (r.start + k as i64 * r.step) as usize * s)
                .sum(),
        )
    });
    Const::new(shape, x.data.take(&idx))
}

fn gather(x: &Const, indices: &Const, axis: i64) -> Result<Const> {
    let axis = norm_axis(axis, x.shape.len())?;
    let d = x.shape[axis] as i64;
    let ind = indices.to_known_i64s("the indices")?;
    let ind: Vec<usize> = ind
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + d } else { i };
            ensure!(
                (0..d).contains(&j),
                "index {i} is out of range for size {d}"
            );
            Ok(j as usize)
        })
        .collect::<Result<_>>()?;
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis + 1..].iter().product();
    let mut shape = x.shape[..axis].to_vec();
    shape.extend(&indices.shape);
    shape.extend(&x.shape[axis + 1..]);
    folded_len(&shape)?;
    let mut idx = Vec::new();
    for o in 0..outer {
        for &i in &ind {
            for k in 0..inner {
                idx.push((o * x.shape[axis] + i) * inner + k);
            }
        }
    }
    Const::new(shape, x.data.take(&idx))
}

fn concat(parts: &[&Const], axis: i64) -> Result<Const> {
    let first = parts.first().ok_or_else(|| anyhow!("Concat of nothing"))?;
    let rank = first.shape.len();
    let axis = norm_axis(axis, rank)?;
    for p in parts {
        ensure!(
            p.shape.len() == rank && (0..rank).all(|i| i == axis || p.shape[i] == first.shape[i]),
            "cannot concatenate shapes {:?} and {:?} on axis {axis}",
            first.shape,
            p.shape
        );
        ensure!(
            std::mem::discriminant(&p.data) == std::mem::discriminant(&first.data),
            "cannot concatenate {} and {} tensors",
            first.data.type_name(),
            p.data.type_name()
        );
    }
    let outer: usize = first.shape[..axis].iter().product();
    let mut shape = first.shape.clone();
    shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
    folded_len(&shape)?;
    let mut data = first.data.take(&[]);
    for o in 0..outer {
        for p in parts {
            let chunk: usize = p.shape[axis..].iter().product();
            let piece = p
                .data
                .take(&(o * chunk..(o + 1) * chunk).collect::<Vec<_>>());
            match (&mut data, piece) {
                (Data::F32(d), Data::F32(s)) => d.extend(s),
                (Data::I64(d), Data::I64(s)) => d.extend(s),
                (Data::Bool(d), Data::Bool(s)) => d.extend(s),
                _ => unreachable!("types checked above"),
            }
        }
    }
    Const::new(shape, data)
}

fn transpose(x: &Const, perm: &[i64]) -> Result<Const> {
    let rank = x.shape.len();
    let perm: Vec<usize> = perm
        .iter()
        .map(|&p| norm_axis(p, rank))
        .collect::<Result<_>>()?;
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    ensure!(
        sorted == (0..rank).collect::<Vec<_>>(),
        "perm {perm:?} is not a permutation of {rank} axes"
    );
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let st = strides(&x.shape);
    let mut idx = Vec::new();
    for_each_index(&shape, |i| {
        idx.push(i.iter().zip(&perm).map(|(&k, &p)| k * st[p]).sum())
    });
    Const::new(shape, x.data.take(&idx))
}

fn cast(x: &Const, to: i32) -> Result<Const> {
    let data = match to {
        // float, float16, double, bfloat16
        1 | 10 | 11 | 16 => Data::F32(x.to_f32s()?),
        // integer types
        2..=7 | 12 | 13 => match &x.data {
            Data::F32(v) => Data::I64(
                v.iter()
                    .map(|&f| {
                        ensure!(f.is_finite(), "cannot cast {f} to an integer");
                        Ok(f.trunc() as i64)
                    })
                    .collect::<Result<_>>()?,
            ),
            _ => Data::I64(x.to_i64s()?),
        },
        9 => Data::Bool(match &x.data {
            Data::F32(v) => v.iter().map(|&f| f != 0.0).collect(),
            Data::I64(v) => v.iter().map(|&i| i != 0).collect(),
            Data::Bool(v) => v.clone(),
        }),
        other => bail!(
            "Cast to {} is not supported",
            super::tensor::type_name(other)
        ),
    };
    Const::new(x.shape.clone(), data)
}

/// Numpy broadcasting of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let get = |s: &[usize], i: usize| {
        if i + s.len() < rank {
            1
        } else {
            s[i + s.len() - rank]
        }
    };
    (0..rank)
        .map(|i| match (get(a, i), get(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => bail!("shapes {a:?} and {b:?} do not broadcast"),
        })
        .collect()
}

/// For every element of `to`, the flat index of the element of `from` broadcast onto it.
pub fn broadcast_index(from: &[usize], to: &[usize]) -> Vec<usize> {
    let st = strides(from);
    let off = to.len() - from.len();
    let mut idx = Vec::new();
    for_each_index(to, |i| {
        idx.push(
            (0..from.len())
                .map(|k| if from[k] == 1 { 0 } else { i[k + off] * st[k] })
                .sum(),
        )
    });
    idx
}

fn binary<T: Copy, U>(
    a: &Const,
    b: &Const,
    va: &[T],
    vb: &[T],
    f: impl Fn(T, T) -> Result<U>,
) -> Result<(Vec<usize>, Vec<U>)> {
    let shape = broadcast_shape(&a.shape, &b.shape)?;
    folded_len(&shape)?;
    let ia = broadcast_index(&a.shape, &shape);
    let ib = broadcast_index(&b.shape, &shape);
    let out = ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| f(va[i], vb[j]))
        .collect::<Result<_>>()?;
    Ok((shape, out))
}

fn arithmetic(op: &str, a: &Const, b: &Const) -> Result<Const> {
    match (&a.data, &b.data) {
        (Data::F32(va), Data::F32(vb)) => {
            let f = |x: f32, y: f32| {
                Ok(match op {
                    "Add" => x + y,
                    "Sub" => x - y,
                    "Mul" => x * y,
                    _ => x / y,
                })
            };
            let (shape, v) = binary(a, b, va, vb, f)?;
            Const::new(shape, Data::F32(v))
        }
        (Data::I64(_), Data::I64(_)) => {
            let va = a.to_known_i64s("operands")?;
            let vb = b.to_known_i64s("operands")?;
            let f = |x: i64, y: i64| {
                match op {
                    "Add" => x.checked_add(y),
                    "Sub" => x.checked_sub(y),
                    "Mul" => x.checked_mul(y),
                    _ => x.checked_div(y),
                }
                .ok_or_else(|| anyhow!("integer {op} of {x} and {y} overflows or divides by 0"))
            };
            let (shape, v) = binary(a, b, &va, &vb, f)?;
            Const::new(shape, Data::I64(v))
        }
        _ => bail!(
            "{op} of {} and {} tensors",
            a.data.type_name(),
            b.data.type_name()
        ),
    }
}

fn compare(op: &str, a: &Const, b: &Const) -> Result<Const> {
    let pick = |o: std::cmp::Ordering| match op {
        "Equal" => o.is_eq(),
        "Less" => o.is_lt(),
        _ => o.is_gt(),
    };
    let (shape, v) = match (&a.data, &b.data) {
        (Data::F32(va), Data::F32(vb)) => binary(a, b, va, vb, |x: f32, y: f32| {
            Ok(x.partial_cmp(&y).is_some_and(pick))
        })?,
        (Data::I64(_), Data::I64(_)) => {
            let va = a.to_known_i64s("operands")?;
            let vb = b.to_known_i64s("operands")?;
            binary(a, b, &va, &vb, |x: i64, y: i64| Ok(pick(x.cmp(&y))))?
        }
        (Data::Bool(va), Data::Bool(vb)) if op == "Equal" => {
            binary(a, b, va, vb, |x: bool, y: bool| Ok(x == y))?
        }
        _ => bail!(
            "{op} of {} and {} tensors",
            a.data.type_name(),
            b.data.type_name()
        ),
    };
    Const::new(shape, Data::Bool(v))
}

fn where_(cond: &Const, x: &Const, y: &Const) -> Result<Const> {
    let Data::Bool(c) = &cond.data else {
        bail!("Where needs a bool condition");
    };
    ensure!(
        std::mem::discriminant(&x.data) == std::mem::discriminant(&y.data),
        "Where of {} and {} tensors",
        x.data.type_name(),
        y.data.type_name()
    );
    let shape = broadcast_shape(&broadcast_shape(&cond.shape, &x.shape)?, &y.shape)?;
    folded_len(&shape)?;
    let (ic, ix, iy) = (
        broadcast_index(&cond.shape, &shape),
        broadcast_index(&x.shape, &shape),
        broadcast_index(&y.shape, &shape),
    );
    let xs = x.data.take(&ix);
    let ys = y.data.take(&iy);
    let data = match (xs, ys) {
        (Data::F32(a), Data::F32(b)) => Data::F32(
            (0..a.len())
                .map(|k| if c[ic[k]] { a[k] } else { b[k] })
                .collect(),
        ),
        (Data::I64(a), Data::I64(b)) => Data::I64(
            (0..a.len())
                .map(|k| if c[ic[k]] { a[k] } else { b[k] })
                .collect(),
        ),
        (Data::Bool(a), Data::Bool(b)) => Data::Bool(
            (0..a.len())
                .map(|k| if c[ic[k]] { a[k] } else { b[k] })
                .collect(),
        ),
        _ => unreachable!("types checked above"),
    };
    Const::new(shape, data)
}

fn range(start: &Const, limit: &Const, delta: &Const) -> Result<Const> {
    match (&start.data, &limit.data, &delta.data) {
        (Data::I64(_), Data::I64(_), Data::I64(_)) => {
            let one = |c: &Const, what: &str| -> Result<i64> {
                let v = c.to_known_i64s(what)?;
                ensure!(v.len() == 1, "Range {what} must be a scalar");
                Ok(v[0])
            };
            let (s, l, d) = (
                one(start, "start")?,
                one(limit, "limit")?,
                one(delta, "delta")?,
            );
            ensure!(d != 0, "Range delta is 0");
            let span = (l as i128 - s as i128 + d as i128 - d.signum() as i128) / d as i128;
            let n = usize::try_from(span.max(0)).unwrap_or(usize::MAX);
            folded_len(&[n])?;
            Ok(Const::ints((0..n as i64).map(|i| s + i * d).collect()))
        }
        (Data::F32(_), Data::F32(_), Data::F32(_)) => {
            let (s, l, d) = (
                start.scalar_f32()?,
                limit.scalar_f32()?,
                delta.scalar_f32()?,
            );
            ensure!(
                d != 0.0 && d.is_finite(),
                "Range delta must be finite and non-zero"
            );
            let count = ((l - s) / d).ceil().max(0.0);
            ensure!(count <= MAX_FOLDED as f32, "Range is too long");
            let n = count as usize;
            Const::new(
                vec![n],
                Data::F32((0..n).map(|i| s + i as f32 * d).collect()),
            )
        }
        _ => bail!("Range inputs must be all integers or all floats"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_clamps_like_onnx() {
        assert_eq!(range1(32, 0, i64::MAX, 2).count, 16);
        // Reversing: start -1, end -i64::MAX, step -1 takes everything backwards.
        let r = range1(4, -1, -i64::MAX, -1);
        assert_eq!((r.start, r.count), (3, 4));
        assert_eq!(range1(5, 1, 3, 1).count, 2);
        assert_eq!(range1(5, 3, 1, 1).count, 0);
    }

    #[test]
    fn reshape_resolves_zero_and_minus_one() {
        assert_eq!(
            reshape_shape(&[2, 3, 4], &[0, -1], false).unwrap(),
            vec![2, 12]
        );
        assert!(reshape_shape(&[2, 3], &[4, -1], false).is_err());
    }

    #[test]
    fn broadcast_indices() {
        assert_eq!(broadcast_index(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_index(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
    }
}
