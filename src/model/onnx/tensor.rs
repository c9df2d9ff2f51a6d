//! Constant tensors of the import (initializers, Constant nodes, folded values) and their decoding
//! from `TensorProto`: raw_data, typed fields or external data, always checked against the shape
//! before anything is allocated.

use super::proto::TensorProto;
use super::proto::tensor_proto::{DataLocation, DataType};
use crate::tensor::checked_numel;
use anyhow::{Result, anyhow, bail, ensure};

/// Element values. Every float type becomes f32, every integer type i64.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

/// A constant tensor: shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    pub shape: Vec<usize>,
    pub data: Data,
}

/// Stands for the batch size (unknown at load time) inside integer shape tensors, so that
/// `Shape -> Gather -> Concat -> Reshape` chains can carry it to the Reshape that uses it.
/// Arithmetic on it is refused.
pub const BATCH: i64 = i64::MIN;

/// The most elements a computed (folded) constant may have: shape arithmetic needs a handful,
/// and a claimed shape must never make us allocate gigabytes.
pub const MAX_FOLDED: usize = 1 << 24;

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Data::F32(_) => "float",
            Data::I64(_) => "int64",
            Data::Bool(_) => "bool",
        }
    }

    /// The elements at `indices`, in that order.
    pub fn take(&self, indices: &[usize]) -> Data {
        match self {
            Data::F32(v) => Data::F32(indices.iter().map(|&i| v[i]).collect()),
            Data::I64(v) => Data::I64(indices.iter().map(|&i| v[i]).collect()),
            Data::Bool(v) => Data::Bool(indices.iter().map(|&i| v[i]).collect()),
        }
    }

    /// `n` copies of the first element.
    pub fn splat(&self, n: usize) -> Data {
        self.take(&vec![0; n])
    }
}

impl Const {
    /// Makes a constant, checking that the data fits the shape.
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Self> {
        let n = checked_numel(&shape)?;
        ensure!(
            n == data.len(),
            "shape {shape:?} needs {n} values, got {}",
            data.len()
        );
        Ok(Self { shape, data })
    }

    /// A 1-D int64 tensor.
    pub fn ints(v: Vec<i64>) -> Self {
        Self {
            shape: vec![v.len()],
            data: Data::I64(v),
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// The values as integers (bool as 0/1); floats are refused.
    pub fn to_i64s(&self) -> Result<Vec<i64>> {
        match &self.data {
            Data::I64(v) => Ok(v.clone()),
            Data::Bool(v) => Ok(v.iter().map(|&b| b as i64).collect()),
            Data::F32(_) => bail!("expected an integer tensor, got a float one"),
        }
    }

    /// The values as integers, refusing the batch placeholder (`what` names them in errors).
    pub fn to_known_i64s(&self, what: &str) -> Result<Vec<i64>> {
        let v = self.to_i64s().map_err(|e| anyhow!("{what}: {e}"))?;
        ensure!(
            !v.contains(&BATCH),
            "{what} depend on the batch size, which is only known at run time"
        );
        Ok(v)
    }

    /// The values as f32 (integers converted).
    pub fn to_f32s(&self) -> Result<Vec<f32>> {
        match &self.data {
            Data::F32(v) => Ok(v.clone()),
            Data::I64(v) => {
                ensure!(
                    !v.contains(&BATCH),
                    "values depend on the batch size, which is only known at run time"
                );
                Ok(v.iter().map(|&x| x as f32).collect())
            }
            Data::Bool(v) => Ok(v.iter().map(|&b| b as u8 as f32).collect()),
        }
    }

    /// The single value of a one-element tensor, as f32.
    pub fn scalar_f32(&self) -> Result<f32> {
        ensure!(
            self.len() == 1,
            "expected one value, got a tensor of shape {:?}",
            self.shape
        );
        Ok(self.to_f32s()?[0])
    }
}

/// Where the bytes of tensors stored outside the model file come from.
pub trait ExternalData {
    /// Exactly `len` bytes at `offset` of the file `location` (relative to the model's folder).
    /// Implementations must check the file is long enough before allocating.
    fn read(&self, location: &str, offset: u64, len: usize) -> Result<Vec<u8>>;
}

/// For models loaded from bytes alone: external data cannot be reached.
pub struct NoExternalData;

impl ExternalData for NoExternalData {
    fn read(&self, location: &str, _: u64, _: usize) -> Result<Vec<u8>> {
        bail!(
            "its data is in the external file '{location}', which cannot be read when the model \
             is loaded from bytes; load it from its file so that '{location}' is found beside it"
        )
    }
}

/// External data files held in memory by location (for example files a web page was given).
pub struct ExternalFiles(pub std::collections::HashMap<String, Vec<u8>>);

impl ExternalData for ExternalFiles {
    fn read(&self, location: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let data = self
            .0
            .get(location)
            .ok_or_else(|| anyhow!("the external data file '{location}' was not given"))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.checked_add(len).filter(|&e| e <= data.len());
        let end = end.ok_or_else(|| {
            anyhow!(
                "external data file '{location}' holds {} bytes, but the tensor needs {len} bytes \
                 at offset {offset}",
                data.len()
            )
        })?;
        Ok(data[start..end].to_vec())
    }
}

/// External data files in a folder (the model file's).
#[cfg(not(target_arch = "wasm32"))]
pub struct ExternalDir(pub std::path::PathBuf);

#[cfg(not(target_arch = "wasm32"))]
impl ExternalData for ExternalDir {
    fn read(&self, location: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        use std::path::{Component, Path};
        let rel = Path::new(location);
        ensure!(
            !location.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_))),
            "external data location '{location}' must be a relative path inside the model's folder"
        );
        let path = self.0.join(rel);
        let mut file = std::fs::File::open(&path)
            .map_err(|e| anyhow!("external data file {}: {e}", path.display()))?;
        let size = file
            .metadata()
            .map_err(|e| anyhow!("external data file {}: {e}", path.display()))?
            .len();
        let end = offset.checked_add(len as u64);
        ensure!(
            end.is_some_and(|end| end <= size),
            "external data file {} holds {size} bytes, but the tensor needs {len} bytes at offset \
             {offset}",
            path.display()
        );
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| anyhow!("external data file {}: {e}", path.display()))?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf)
            .map_err(|e| anyhow!("external data file {}: {e}", path.display()))?;
        Ok(buf)
    }
}

/// The element type of a tensor: its name and bytes per element in raw_data.
fn element(code: i32) -> Result<(DataType, usize)> {
    let dt = DataType::try_from(code).map_err(|_| anyhow!("unknown data type {code}"))?;
    let size = match dt {
        DataType::Float | DataType::Int32 | DataType::Uint32 => 4,
        DataType::Double | DataType::Int64 | DataType::Uint64 => 8,
        DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16 => 2,
        DataType::Int8 | DataType::Uint8 | DataType::Bool => 1,
        other => bail!("data type {} is not supported", other.as_str_name()),
    };
    Ok((dt, size))
}

/// The ONNX name of an element type code, for messages.
pub fn type_name(code: i32) -> String {
    DataType::try_from(code)
        .map(|d| d.as_str_name().to_string())
        .unwrap_or_else(|_| format!("type {code}"))
}

/// Decodes one tensor. Errors name the problem, not the tensor (the caller adds that).
pub fn decode(t: &TensorProto, external: &dyn ExternalData) -> Result<Const> {
    let (dt, size) = element(t.data_type.unwrap_or(0))?;
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| anyhow!("negative dimension in {:?}", t.dims)))
        .collect::<Result<Vec<usize>>>()?;
    let n = checked_numel(&shape)?;
    ensure!(t.segment.is_none(), "segmented tensors are not supported");
    let external_loc = t.data_location == Some(DataLocation::External as i32);
    let data = if external_loc {
        let get = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key.as_deref() == Some(key))
                .and_then(|e| e.value.as_deref())
        };
        let location = get("location").ok_or_else(|| anyhow!("external data has no location"))?;
        let number = |key: &str| -> Result<Option<u64>> {
            get(key)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| anyhow!("external data {key} '{v}' is not a number"))
                })
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        let bytes = n
            .checked_mul(size)
            .ok_or_else(|| anyhow!("shape {shape:?} is too large"))?;
        if let Some(length) = number("length")? {
            ensure!(
                length == bytes as u64,
                "external data length {length} does not match shape {shape:?} of {} ({bytes} bytes)",
                dt.as_str_name()
            );
        }
        let raw = external.read(location, offset, bytes)?;
        from_raw(dt, &raw)
    } else if let Some(raw) = &t.raw_data {
        ensure!(
            raw.len() == n.saturating_mul(size),
            "raw_data holds {} bytes but shape {shape:?} of {} needs {}",
            raw.len(),
            dt.as_str_name(),
            n.saturating_mul(size)
        );
        from_raw(dt, raw)
    } else {
        from_typed(dt, t)
    };
    ensure!(
        data.len() == n,
        "holds {} values but its shape {shape:?} needs {n}",
        data.len()
    );
    Ok(Const { shape, data })
}

/// Little-endian raw bytes (length already checked to be a whole number of elements).
fn from_raw(dt: DataType, raw: &[u8]) -> Data {
    fn chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        raw.chunks_exact(N).map(|c| c.try_into().unwrap())
    }
    match dt {
        DataType::Float => Data::F32(chunks::<4>(raw).map(f32::from_le_bytes).collect()),
        DataType::Double => Data::F32(
            chunks::<8>(raw)
                .map(|c| f64::from_le_bytes(c) as f32)
                .collect(),
        ),
        DataType::Float16 => Data::F32(
            chunks::<2>(raw)
                .map(|c| half::f16::from_le_bytes(c).to_f32())
                .collect(),
        ),
        DataType::Bfloat16 => Data::F32(
            chunks::<2>(raw)
                .map(|c| half::bf16::from_le_bytes(c).to_f32())
                .collect(),
        ),
        DataType::Int64 => Data::I64(chunks::<8>(raw).map(i64::from_le_bytes).collect()),
        // u64 values above i64::MAX wrap; shape tensors never hold them.
        DataType::Uint64 => Data::I64(chunks::<8>(raw).map(i64::from_le_bytes).collect()),
        DataType::Int32 => Data::I64(
            chunks::<4>(raw)
                .map(|c| i32::from_le_bytes(c) as i64)
                .collect(),
        ),
        DataType::Uint32 => Data::I64(
            chunks::<4>(raw)
                .map(|c| u32::from_le_bytes(c) as i64)
                .collect(),
        ),
        DataType::Int16 => Data::I64(
            chunks::<2>(raw)
                .map(|c| i16::from_le_bytes(c) as i64)
                .collect(),
        ),
        DataType::Uint16 => Data::I64(
            chunks::<2>(raw)
                .map(|c| u16::from_le_bytes(c) as i64)
                .collect(),
        ),
        DataType::Int8 => Data::I64(raw.iter().map(|&b| b as i8 as i64).collect()),
        DataType::Uint8 => Data::I64(raw.iter().map(|&b| b as i64).collect()),
        DataType::Bool => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
        _ => unreachable!("element() admits only the types above"),
    }
}

/// The type-specific repeated fields (float_data, int32_data, ...).
fn from_typed(dt: DataType, t: &TensorProto) -> Data {
    match dt {
        DataType::Float => Data::F32(t.float_data.clone()),
        DataType::Double => Data::F32(t.double_data.iter().map(|&v| v as f32).collect()),
        DataType::Float16 => Data::F32(
            t.int32_data
                .iter()
                .map(|&v| half::f16::from_bits(v as u16).to_f32())
                .collect(),
        ),
        DataType::Bfloat16 => Data::F32(
            t.int32_data
                .iter()
                .map(|&v| half::bf16::from_bits(v as u16).to_f32())
                .collect(),
        ),
        DataType::Int64 => Data::I64(t.int64_data.clone()),
        DataType::Uint32 | DataType::Uint64 => {
            Data::I64(t.uint64_data.iter().map(|&v| v as i64).collect())
        }
        DataType::Bool => Data::Bool(t.int32_data.iter().map(|&v| v != 0).collect()),
        _ => Data::I64(t.int32_data.iter().map(|&v| v as i64).collect()),
    }
}
