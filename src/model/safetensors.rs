//! safetensors files with torchvision / timm key names.

use super::{Model, Network};
use crate::graph::arch::{ArchSpec, BlockKind, Shortcut};
use crate::tensor::Tensor;
use anyhow::{Result, anyhow, bail};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;

/// Prefixes that training wrappers put before torchvision names.
const PREFIXES: [&str; 3] = ["module.", "model.", "_orig_mod."];

pub fn load(bytes: &[u8], name: &str, arch: Option<&str>) -> Result<Model> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| anyhow!("{name}: not a valid safetensors file: {e}"))?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow!("{name}: not a valid safetensors file: {e}"))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let mut weights = HashMap::new();
    for (key, view) in st.iter() {
        let mut key = key.to_string();
        while let Some(rest) = PREFIXES.iter().find_map(|p| key.strip_prefix(p)) {
            key = rest.to_string();
        }
        if key.ends_with("num_batches_tracked") {
            continue;
        }
        let data = to_f32(view.dtype(), view.data())
            .map_err(|e| anyhow!("{name}: tensor '{key}': {e}"))?;
        if data.iter().any(|v| !v.is_finite()) {
            log::warn!("{name}: tensor '{key}' holds NaN or infinite values");
        }
        let t = Tensor::new(view.shape().to_vec(), data)
            .map_err(|e| anyhow!("{name}: tensor '{key}': {e}"))?;
        weights.insert(key, t);
    }
    let arch = match arch.or(metadata.get("arch").map(|s| s.as_str())) {
        Some(a) => {
            let mut spec = ArchSpec::parse(a).map_err(|e| anyhow!("{name}: {e}"))?;
            if let Some(s) = metadata.get("shortcut")
                && arch.is_none()
                && spec.shortcut != Shortcut::Plain
            {
                spec.shortcut = parse_shortcut(s)
                    .ok_or_else(|| anyhow!("{name}: unknown shortcut option '{s}' in metadata"))?;
            }
            spec
        }
        None => infer_arch(&weights).ok_or_else(|| {
            anyhow!("{name}: cannot tell the architecture from the tensors; pass --arch")
        })?,
    };
    Ok(Model {
        network: Network::Arch {
            spec: arch,
            weights,
        },
        metadata,
        source: name.to_string(),
    })
}

fn parse_shortcut(s: &str) -> Option<Shortcut> {
    match s.trim().to_ascii_uppercase().as_str() {
        "A" => Some(Shortcut::A),
        "B" => Some(Shortcut::B),
        "C" => Some(Shortcut::C),
        "NONE" | "PLAIN" => Some(Shortcut::Plain),
        _ => None,
    }
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Result<Vec<f32>> {
    let chunks = |n: usize| {
        if !data.len().is_multiple_of(n) {
            bail!("data length {} is not a multiple of {n}", data.len());
        }
        Ok(data.chunks_exact(n))
    };
    Ok(match dtype {
        Dtype::F32 => chunks(4)?
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        Dtype::F64 => chunks(8)?
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        Dtype::F16 => chunks(2)?
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => chunks(2)?
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => bail!("unsupported dtype {other:?} (expected F32, F16, BF16 or F64)"),
    })
}

/// Recognises the architecture from torchvision names: stage count and blocks per stage, basic or
/// bottleneck, and where projections appear. The bottleneck stride placement (v1 / v1.5) cannot be
/// seen in weights: torchvision's v1.5 is assumed.
pub fn infer_arch(w: &HashMap<String, Tensor>) -> Option<ArchSpec> {
    let stages: Vec<usize> = (1..=4)
        .map(|s| {
            (0..)
                .take_while(|i| w.contains_key(&format!("layer{s}.{i}.conv1.weight")))
                .count()
        })
        .take_while(|&n| n > 0)
        .collect();
    let bottleneck = w.contains_key("layer1.0.conv3.weight");
    let imagenet = w.get("conv1.weight")?.shape.get(2) == Some(&7);
    let per_block = if bottleneck { 3 } else { 2 };
    let depth = stages.iter().sum::<usize>() * per_block + 2;
    let mut spec = ArchSpec::parse(&format!("resnet{depth}")).ok()?;
    if spec.imagenet != imagenet
        || spec.stages != stages
        || (spec.block == BlockKind::Bottleneck) != bottleneck
    {
        return None;
    }
    let projections = stages
        .iter()
        .enumerate()
        .flat_map(|(s, &n)| (0..n).map(move |i| (s, i)))
        .filter(|(s, i)| w.contains_key(&format!("layer{}.{}.downsample.0.weight", s + 1, i)))
        .count();
    let blocks: usize = stages.iter().sum();
    spec.shortcut = if projections == blocks {
        Shortcut::C
    } else if projections > 0 {
        Shortcut::B
    } else if imagenet {
        return None;
    } else {
        Shortcut::A
    };
    Some(spec)
}
