//! safetensors files with torchvision / timm key names.

use super::{Model, Network};
use crate::graph::arch::{ArchSpec, BlockKind, Shortcut};
use crate::tensor::Tensor;
use anyhow::{Result, anyhow, bail};
use safetensors::Dtype;
use std::collections::HashMap;

/// Prefixes that training wrappers put before torchvision names.
const PREFIXES: [&str; 3] = ["module.", "model.", "_orig_mod."];

/// Loads a safetensors file's bytes; `name` (the file name) starts every error message. `arch`
/// overrides the architecture the metadata or the tensor names give.
pub fn load(bytes: &[u8], name: &str, arch: Option<&str>) -> crate::Result<Model> {
    parse(bytes, name, arch).map_err(|e| crate::Error::invalid_model(name, e))
}

fn parse(bytes: &[u8], name: &str, arch: Option<&str>) -> Result<Model> {
    let layout = check_layout(bytes, bytes.len() as u64)
        .map_err(|e| anyhow!("{name}: not a valid safetensors file: {e}"))?;
    refuse_hugging_face(&layout, name)?;
    let data = &bytes[layout.data_start as usize..];
    let tensors = layout.entries.into_iter().map(|e| {
        let values = to_f32(e.dtype, &data[e.begin as usize..e.end as usize]);
        (e, values)
    });
    build(name, layout.metadata, tensors, arch)
}

/// Loads a safetensors file from disk one tensor at a time: the file is never in memory whole,
/// so loading peaks at the weights plus one tensor's bytes, not twice the file.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_file(path: &std::path::Path, arch: Option<&str>) -> crate::Result<Model> {
    use std::io::{Read, Seek, SeekFrom};
    let name = path.display().to_string();
    let io = |e| crate::Error::io(&name, "read", e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    // The header length, then the header, as far as the file and the format's limit allow:
    // check_layout says what is wrong with a file too short for its claims.
    let mut head = vec![0u8; len.min(8) as usize];
    file.read_exact(&mut head).map_err(io)?;
    if let Ok(prefix) = <[u8; 8]>::try_from(head.as_slice()) {
        let n = u64::from_le_bytes(prefix).min(MAX_HEADER).min(len - 8);
        head.resize(8 + n as usize, 0);
        file.read_exact(&mut head[8..]).map_err(io)?;
    }
    let layout = check_layout(&head, len).map_err(|e| {
        crate::Error::invalid_model(&name, format!("not a valid safetensors file: {e}"))
    })?;
    refuse_hugging_face(&layout, &name).map_err(|e| crate::Error::invalid_model(&name, e))?;
    drop(head);
    let mut buffer = Vec::new();
    let tensors = layout.entries.into_iter().map(|e| {
        let values = (|| {
            buffer.resize((e.end - e.begin) as usize, 0);
            file.seek(SeekFrom::Start(layout.data_start + e.begin))?;
            file.read_exact(&mut buffer)?;
            to_f32(e.dtype, &buffer)
        })();
        (e, values)
    });
    build(&name, layout.metadata, tensors, arch).map_err(|e| crate::Error::invalid_model(&name, e))
}

/// Hugging Face names would fail later as "cannot tell the architecture" or a missing
/// 'conv1.weight': say what the file is instead.
fn refuse_hugging_face(layout: &Layout, name: &str) -> Result<()> {
    let names = layout.entries.iter().map(|e| e.key.as_str());
    if let Some(key) = super::sniff::hugging_face_name(names) {
        bail!(
            "{name}: this looks like a Hugging Face transformers checkpoint (tensor names like '{key}'), which is not supported yet (issue 17); export the model to ONNX, or rename its tensors to torchvision's (conv1.weight, layer1.0.conv1.weight, ...)"
        );
    }
    Ok(())
}

/// The model from its metadata and its tensors as they are read: wrapper prefixes stripped,
/// BN's `num_batches_tracked` dropped, then the architecture from `arch`, the metadata or the
/// tensor names.
fn build(
    name: &str,
    metadata: HashMap<String, String>,
    tensors: impl Iterator<Item = (Entry, Result<Vec<f32>>)>,
    arch: Option<&str>,
) -> Result<Model> {
    let mut weights = HashMap::new();
    for (entry, data) in tensors {
        let mut key = entry.key;
        while let Some(rest) = PREFIXES.iter().find_map(|p| key.strip_prefix(p)) {
            key = rest.to_string();
        }
        if key.ends_with("num_batches_tracked") {
            continue;
        }
        let data = data.map_err(|e| anyhow!("{name}: tensor '{key}': {e}"))?;
        // A NaN or infinite weight is legal in the format and the model still loads (it may be
        // unused, or the user may want to see what it does), but it almost always means a broken
        // export: say so.
        let bad = data.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            log::warn!(
                "{name}: tensor '{key}' holds {bad} NaN or infinite value(s) of {}; outputs will likely be NaN",
                data.len()
            );
        }
        let t =
            Tensor::new(entry.shape, data).map_err(|e| anyhow!("{name}: tensor '{key}': {e}"))?;
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

/// The header size limit of the safetensors format (and crate).
const MAX_HEADER: u64 = 100_000_000;

/// One tensor of the file, as its header describes it (offsets into the data section).
struct Entry {
    key: String,
    dtype: Dtype,
    shape: Vec<usize>,
    begin: u64,
    end: u64,
}

/// What a valid header says.
struct Layout {
    /// Where the data section starts in the file.
    data_start: u64,
    entries: Vec<Entry>,
    metadata: HashMap<String, String>,
}

/// Checks the container layout of a file of `len` bytes from its first bytes (`bytes`: the whole
/// file, or at least the length field and the header), so that every way a file can be broken
/// gets a message saying what is wrong and where. Allocates nothing in proportion to a size the
/// file claims. Returns every tensor's place and the metadata.
fn check_layout(bytes: &[u8], len: u64) -> Result<Layout> {
    use serde_json::Value;
    if len == 0 {
        bail!("the file is empty");
    }
    let Some(prefix) = bytes.get(..8) else {
        bail!("the file is {len} bytes, too short for the 8-byte header length it must start with");
    };
    let n = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
    if n > len - 8 {
        bail!(
            "the header length field says {n} bytes but only {} bytes follow it (truncated, or not a safetensors file)",
            len - 8
        );
    }
    if n > MAX_HEADER {
        bail!("the header is {n} bytes, more than the format's limit of {MAX_HEADER}");
    }
    let header = &bytes[8..8 + n as usize];
    let text = std::str::from_utf8(header)
        .map_err(|e| anyhow!("the {n}-byte header is not UTF-8 text: {e}"))?;
    let json: serde_json::Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| anyhow!("the {n}-byte header is not a valid JSON object: {e}"))?;
    let data_len = len - 8 - n;
    // (begin, end, name) of every tensor, to check overlaps and gaps afterwards.
    let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(json.len());
    let mut entries = Vec::with_capacity(json.len());
    let mut metadata = HashMap::new();
    for (key, info) in &json {
        if key == "__metadata__" {
            let Some(fields) = info.as_object() else {
                bail!("__metadata__ must be an object of strings");
            };
            for (k, v) in fields {
                let Some(v) = v.as_str() else {
                    bail!("__metadata__ must be an object of strings");
                };
                metadata.insert(k.clone(), v.to_string());
            }
            continue;
        }
        let field = |f: &str| {
            info.get(f)
                .ok_or_else(|| anyhow!("tensor '{key}': the header entry has no '{f}'"))
        };
        let dtype_name = field("dtype")?
            .as_str()
            .ok_or_else(|| anyhow!("tensor '{key}': dtype is not a string"))?;
        let dtype: Dtype = serde_json::from_value(Value::String(dtype_name.to_string()))
            .map_err(|_| anyhow!("tensor '{key}': unknown dtype '{dtype_name}'"))?;
        let shape_json = field("shape")?
            .as_array()
            .ok_or_else(|| anyhow!("tensor '{key}': shape is not a list"))?;
        let mut shape = Vec::with_capacity(shape_json.len().min(64));
        for d in shape_json {
            match d.as_u64() {
                Some(v) => shape.push(v),
                None if d.as_i64().is_some() || d.as_f64().is_some_and(|f| f < 0.0) => {
                    bail!(
                        "tensor '{key}': negative dimension {d} in shape {}",
                        info["shape"]
                    )
                }
                None => bail!(
                    "tensor '{key}': dimension {d} in shape {} is not a non-negative integer",
                    info["shape"]
                ),
            }
        }
        // u128: a product of u64 dimensions can overflow u64 but not (for a few dims) u128;
        // saturate for longer shapes.
        let elements = shape
            .iter()
            .try_fold(1u128, |n, &d| n.checked_mul(d as u128))
            .unwrap_or(u128::MAX);
        let need_bits = elements.saturating_mul(dtype.bitsize() as u128);
        let offsets = field("data_offsets")?
            .as_array()
            .filter(|o| o.len() == 2)
            .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
            .ok_or_else(|| {
                anyhow!(
                    "tensor '{key}': data_offsets must be two non-negative integers [begin, end]"
                )
            })?;
        let (begin, end) = offsets;
        if end < begin {
            bail!("tensor '{key}': data_offsets [{begin}, {end}] run backwards");
        }
        if end > data_len {
            bail!(
                "tensor '{key}': data_offsets [{begin}, {end}] reach past the end of the {data_len}-byte data section (the file is truncated or the offsets are wrong)"
            );
        }
        if need_bits != (end - begin) as u128 * 8 {
            let need = if need_bits.is_multiple_of(8) {
                format!("{} bytes", need_bits / 8)
            } else {
                format!("{need_bits} bits")
            };
            bail!(
                "tensor '{key}': shape {shape:?} of {dtype_name} ({elements} elements) needs {need} but its data_offsets [{begin}, {end}] hold {} bytes",
                end - begin
            );
        }
        spans.push((begin, end, key));
        let shape = shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<usize>, _>>()
            .map_err(|_| anyhow!("tensor '{key}': shape {shape:?} is too large"))?;
        entries.push(Entry {
            key: key.clone(),
            dtype,
            shape,
            begin,
            end,
        });
    }
    spans.sort();
    let mut at = 0u64;
    let mut prev = "";
    for &(begin, end, key) in &spans {
        if begin < at {
            bail!("tensors '{prev}' and '{key}' overlap (bytes {begin}..{at} of the data section)");
        }
        if begin > at {
            bail!(
                "bytes {at}..{begin} of the data section, before tensor '{key}', belong to no tensor"
            );
        }
        at = end;
        prev = key;
    }
    if at != data_len {
        bail!(
            "the data section is {data_len} bytes but the tensors cover only {at}: {} trailing bytes belong to no tensor",
            data_len - at
        );
    }
    // In file order, so that reading from disk goes forward.
    entries.sort_by_key(|e| e.begin);
    Ok(Layout {
        data_start: 8 + n,
        entries,
        metadata,
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
