//! Checks on a loaded model's values, so that a broken file is refused at load instead of giving
//! confident wrong answers: weights must be finite, batch-norm running variances non-negative,
//! metadata that drives preprocessing (mean, std) finite with std > 0, a class list as long as
//! the model has classes; and a shape that is not one of the paper's ResNets (grouped or wide
//! convolutions) is named as such instead of failing later with a shape mismatch.
//!
//! Rule (README, "NaN and infinity"): a NaN or infinite weight, or a negative variance (whose
//! square root is NaN), makes every output NaN, while PyTorch and ONNX Runtime would show NaN
//! too; we refuse such a file, naming the file and the tensor, unless the caller asks for it
//! anyway ([`LoadOptions::allow_non_finite`], `--allow-non-finite` on the command line).

use super::{LoadOptions, Model, Network};
use crate::graph::Op;
use crate::graph::arch::{ArchSpec, BlockKind};
use crate::tensor::Tensor;
use anyhow::{Result, anyhow, bail};
use std::collections::HashMap;

const OVERRIDE: &str = "pass --allow-non-finite (LoadOptions::allow_non_finite) to load it anyway";

/// Every check of this module; errors name `model.source` and the tensor or metadata key.
pub fn check(model: &Model, opts: &LoadOptions) -> Result<()> {
    let source = &model.source;
    check_metadata(model).map_err(|e| anyhow!("{source}: {e}"))?;
    let tensors: Vec<(String, &[f32])> = match &model.network {
        Network::Arch { spec, weights } => {
            check_shapes(spec, weights).map_err(|e| anyhow!("{source}: {e}"))?;
            let mut v: Vec<(String, &[f32])> = weights
                .iter()
                .map(|(k, t)| (k.clone(), t.data.as_slice()))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
        Network::Graph(g) => g
            .nodes
            .iter()
            .flat_map(|n| -> Vec<(String, &[f32])> {
                let name = |s: &str| format!("{} ({} {s})", n.name, n.op.kind());
                match &n.op {
                    Op::Conv(c) => std::iter::once((name("weight"), c.weight.data.as_slice()))
                        .chain(c.bias.iter().map(|b| (name("bias"), b.as_slice())))
                        .collect(),
                    Op::Linear(l) => std::iter::once((name("weight"), l.weight.data.as_slice()))
                        .chain(l.bias.iter().map(|b| (name("bias"), b.as_slice())))
                        .collect(),
                    Op::BatchNorm(b) => vec![
                        (name("scale"), b.gamma.as_slice()),
                        (name("bias"), b.beta.as_slice()),
                        (name("mean"), b.mean.as_slice()),
                        (name("running_var"), b.var.as_slice()),
                    ],
                    _ => Vec::new(),
                }
            })
            .collect(),
    };
    if opts.allow_non_finite {
        return Ok(());
    }
    for (name, data) in tensors {
        let bad = data.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            let (i, v) = data
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite())
                .expect("counted");
            bail!(
                "{source}: tensor '{name}' holds {bad} NaN or infinite value(s) of {} (the first, {v}, at index {i}): every output would be NaN; {OVERRIDE}",
                data.len()
            );
        }
        if name.ends_with("running_var")
            && let Some((i, v)) = data.iter().enumerate().find(|(_, v)| **v < 0.0)
        {
            bail!(
                "{source}: tensor '{name}' is a batch-norm variance but holds a negative value ({v} at index {i}): its square root is NaN; {OVERRIDE}"
            );
        }
    }
    Ok(())
}

/// A metadata value that must be a number or a list of 1 or 3 numbers: its values.
fn triple(key: &str, text: &str) -> Result<Vec<f32>> {
    let v: Vec<f32> = serde_json::from_str::<Vec<f32>>(text)
        .ok()
        .or_else(|| text.trim().parse::<f32>().ok().map(|x| vec![x]))
        .ok_or_else(|| {
            anyhow!(
                "metadata '{key}' is {text:?}: expected a number or a JSON list of 1 or 3 numbers (one per channel)"
            )
        })?;
    if v.len() != 1 && v.len() != 3 {
        bail!(
            "metadata '{key}' has {} values: expected 1 or 3 (one per channel)",
            v.len()
        );
    }
    if let Some(x) = v.iter().find(|x| !x.is_finite()) {
        bail!("metadata '{key}' holds {x}: preprocessing needs finite numbers");
    }
    Ok(v)
}

fn check_metadata(model: &Model) -> Result<()> {
    let md = &model.metadata;
    if let Some(mean) = md.get("mean") {
        triple("mean", mean)?;
    }
    if let Some(std) = md.get("std") {
        let v = triple("std", std)?;
        if let Some(x) = v.iter().find(|x| **x <= 0.0) {
            bail!(
                "metadata 'std' holds {x}: a standard deviation must be positive (the input is divided by it)"
            );
        }
    }
    if let Some(text) = md.get("classes") {
        let names: Vec<String> = serde_json::from_str(text).map_err(|_| {
            anyhow!("metadata 'classes' is not a JSON list of strings (one name per class)")
        })?;
        let classes = match &model.network {
            Network::Arch { spec, weights } => weights
                .get("fc.weight")
                .and_then(|t| t.shape.first().copied())
                .unwrap_or_else(|| spec.default_classes()),
            Network::Graph(g) => g.output_shape()[0],
        };
        if names.len() != classes {
            bail!(
                "metadata 'classes' lists {} names but the model has {classes} classes",
                names.len()
            );
        }
    }
    Ok(())
}

/// Names grouped (ResNeXt) and wide (Wide ResNet) convolutions, which the paper's architectures
/// do not have: the builders would only report a shape mismatch.
fn check_shapes(spec: &ArchSpec, weights: &HashMap<String, Tensor>) -> Result<()> {
    let expansion = if spec.block == BlockKind::Bottleneck {
        4
    } else {
        1
    };
    let mut in_c = spec.widths[0];
    for (s, (&blocks, &width)) in spec.stages.iter().zip(&spec.widths).enumerate() {
        for i in 0..blocks {
            let prefix = format!("layer{}.{i}", s + 1);
            let shape = |conv: &str| {
                weights
                    .get(&format!("{prefix}.{conv}.weight"))
                    .map(|t| t.shape.clone())
            };
            if let Some(sh) = shape("conv2")
                && sh.len() == 4
                && sh[1] > 0
                && sh[1] < sh[0]
                && sh[0] % sh[1] == 0
            {
                bail!(
                    "tensor '{prefix}.conv2.weight' has shape {sh:?}: a grouped convolution ({} groups, as in ResNeXt), which is not supported (only the paper's ResNets, groups = 1)",
                    sh[0] / sh[1]
                );
            }
            if let Some(sh) = shape("conv1")
                && sh.len() == 4
                && sh[0] != width
                && sh[1] == in_c
            {
                bail!(
                    "tensor '{prefix}.conv1.weight' has {} output channels where {} has {width}: a wide ResNet (as in wide_resnet50_2), which is not supported",
                    sh[0],
                    spec.name()
                );
            }
            in_c = width * expansion;
        }
    }
    Ok(())
}
