//! Reading and writing float32 NCHW tensors as .npy files (the `run` command's format).

use crate::tensor::Tensor;
use anyhow::{Result, anyhow, bail};
use npyz::WriterBuilder;

/// Parses a little-endian float32 (or float64) .npy file.
pub fn read_npy(bytes: &[u8], name: &str) -> Result<Tensor> {
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
    crate::tensor::checked_numel(&shape).map_err(|e| anyhow!("{name}: {e}"))?;
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

/// Serialises a float32 tensor as .npy.
pub fn write_npy(t: &Tensor) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut out)
        .begin_nd()?;
    w.extend(t.data.iter().copied())?;
    w.finish()?;
    Ok(out)
}
