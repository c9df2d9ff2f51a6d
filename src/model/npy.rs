//! Reading and writing float32 NCHW tensors as .npy files (the `run` command's format).

use crate::tensor::Tensor;
use anyhow::{Result, anyhow, bail};
use npyz::WriterBuilder;

/// Parses a little-endian float32 (or float64) .npy file; `name` starts every error message.
pub fn read_npy(bytes: &[u8], name: &str) -> crate::Result<Tensor> {
    parse(bytes, name).map_err(|e| crate::Error::InvalidInput(format!("{e:#}").replace('\n', " ")))
}

fn parse(bytes: &[u8], name: &str) -> Result<Tensor> {
    let data_start =
        check_preamble(bytes).map_err(|e| anyhow!("{name}: not a valid .npy file: {e}"))?;
    let npy =
        npyz::NpyFile::new(bytes).map_err(|e| anyhow!("{name}: not a valid .npy file: {e}"))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if npy.order() == npyz::Order::Fortran && shape.len() > 1 {
        bail!("{name}: Fortran-ordered arrays are not supported");
    }
    let dtype = npy.dtype();
    let descr = match &dtype {
        npyz::DType::Plain(t) => t.to_string(),
        _ => bail!("{name}: structured arrays are not supported"),
    };
    let numel = crate::tensor::checked_numel(&shape).map_err(|e| anyhow!("{name}: {e}"))?;
    // Refuse a header that claims more data than the file holds before reading any of it.
    let item = match descr.as_str() {
        "<f4" | "|f4" => 4,
        "<f8" => 8,
        other => bail!("{name}: dtype {other} is not supported (expected float32 '<f4')"),
    };
    let have = bytes.len() - data_start;
    if (numel as u64) * item > have as u64 {
        bail!(
            "{name}: the header claims shape {shape:?} ({numel} values of {descr}, {} bytes) but only {have} bytes of data follow",
            numel as u64 * item
        );
    }
    let data: Vec<f32> = match descr.as_str() {
        "<f4" | "|f4" => npy.into_vec::<f32>().map_err(|e| anyhow!("{name}: {e}"))?,
        "<f8" => npy
            .into_vec::<f64>()
            .map_err(|e| anyhow!("{name}: {e}"))?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        other => bail!("{name}: dtype {other} is not supported (expected float32)"),
    };
    Tensor::new(shape, data).map_err(|e| anyhow!("{name}: {e}"))
}

/// The header text limit: numpy itself refuses headers over 10000 bytes by default.
const MAX_HEADER: usize = 65536;
/// Deepest bracket nesting accepted in the header (a real one has 2: the dict and the shape; a
/// structured dtype, which we refuse anyway, 4). The Python-literal parser backtracks
/// exponentially on unclosed brackets (found by fuzzing: 10 unclosed '{' took 3 s, 12 took 29 s),
/// so a header nested deeper must not reach it.
const MAX_NESTING: usize = 4;

/// Checks the magic, version and header length, and that the header is a plausible literal;
/// returns where the data starts. Nothing is allocated from the sizes the file claims.
fn check_preamble(bytes: &[u8]) -> Result<usize> {
    if bytes.is_empty() {
        bail!("the file is empty");
    }
    if !bytes.starts_with(b"\x93NUMPY") {
        bail!("it does not start with the .npy magic \\x93NUMPY");
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => bail!("truncated in its version field ({} bytes)", bytes.len()),
    };
    let (len_bytes, start) = match major {
        1 => (2, 10),
        2 | 3 => (4, 12),
        _ => bail!("unsupported format version {major}.{minor}"),
    };
    let Some(field) = bytes.get(8..8 + len_bytes) else {
        bail!(
            "truncated in its header length field ({} bytes)",
            bytes.len()
        );
    };
    let header_len = field
        .iter()
        .rev()
        .fold(0usize, |n, &b| (n << 8) | b as usize);
    if header_len > MAX_HEADER {
        bail!(
            "the header length field says {header_len} bytes, more than the {MAX_HEADER} allowed"
        );
    }
    let Some(header) = bytes.get(start..start + header_len) else {
        bail!(
            "the header length field says {header_len} bytes but only {} follow it (truncated)",
            bytes.len() - start.min(bytes.len())
        );
    };
    let mut depth = 0usize;
    for &b in header {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    bail!("the header nests brackets more than {MAX_NESTING} deep");
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(start + header_len)
}

/// Serialises a float32 tensor as .npy.
pub fn write_npy(t: &Tensor) -> crate::Result<Vec<u8>> {
    let mut out = Vec::new();
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    let fail = |e: std::io::Error| crate::Error::io("the .npy output", "write", e);
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut out)
        .begin_nd()
        .map_err(fail)?;
    w.extend(t.data.iter().copied()).map_err(fail)?;
    w.finish().map_err(fail)?;
    Ok(out)
}

/// Parses a 1-D .npy array of class indices (int64, int32, uint8 or uint32, as numpy and PyTorch
/// write labels); `name` starts every error message. Negative values are refused.
pub fn read_labels(bytes: &[u8], name: &str) -> crate::Result<Vec<usize>> {
    parse_labels(bytes, name)
        .map_err(|e| crate::Error::InvalidInput(format!("{e:#}").replace('\n', " ")))
}

fn parse_labels(bytes: &[u8], name: &str) -> Result<Vec<usize>> {
    let data_start =
        check_preamble(bytes).map_err(|e| anyhow!("{name}: not a valid .npy file: {e}"))?;
    let npy =
        npyz::NpyFile::new(bytes).map_err(|e| anyhow!("{name}: not a valid .npy file: {e}"))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let [n] = shape[..] else {
        bail!("{name}: labels must be a 1-D array, not shape {shape:?}");
    };
    let descr = match npy.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        _ => bail!("{name}: structured arrays are not supported"),
    };
    let item = match descr.as_str() {
        "<i8" | "<u8" => 8,
        "<i4" | "<u4" => 4,
        "|u1" | "|i1" => 1,
        other => bail!("{name}: dtype {other} is not supported for labels (expected int64 '<i8')"),
    };
    if (n as u64) * item > (bytes.len() - data_start) as u64 {
        bail!("{name}: the header claims {n} labels but the data is shorter (truncated)");
    }
    let wide: Vec<i64> = match descr.as_str() {
        "<i8" => npy.into_vec::<i64>()?,
        "<u8" => npy
            .into_vec::<u64>()?
            .into_iter()
            .map(|v| v.min(i64::MAX as u64) as i64)
            .collect(),
        "<i4" => npy.into_vec::<i32>()?.into_iter().map(i64::from).collect(),
        "<u4" => npy.into_vec::<u32>()?.into_iter().map(i64::from).collect(),
        "|u1" => npy.into_vec::<u8>()?.into_iter().map(i64::from).collect(),
        _ => npy.into_vec::<i8>()?.into_iter().map(i64::from).collect(),
    };
    wide.into_iter()
        .enumerate()
        .map(|(i, v)| {
            usize::try_from(v).map_err(|_| anyhow!("{name}: label {i} is negative ({v})"))
        })
        .collect()
}
