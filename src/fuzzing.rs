//! What each fuzz target (fuzz/fuzz_targets/) does with its bytes. The targets and the test that
//! replays their corpus and regressions (tests/hostile.rs) both call these, so the test runs
//! exactly the fuzzed code. A bad input must come back as an error; a panic, a hang or an
//! allocation sized by a claimed rather than an actual length is the bug.

use crate::model::{load_bytes, npy::read_npy};
use crate::preprocess::{Preprocess, decode_image};
use anyhow::Result;

/// Any bytes as a .safetensors file: load, then build the graph, the way the CLI does.
pub fn safetensors(data: &[u8]) -> Result<()> {
    load_bytes(data, "fuzz.safetensors", None)?.into_graph()?;
    Ok(())
}

/// Any bytes as an .onnx file (no external data): decode, fold and import the graph.
pub fn onnx(data: &[u8]) -> Result<()> {
    load_bytes(data, "fuzz.onnx", None)?.into_graph()?;
    Ok(())
}

/// Any bytes as the `run` command's .npy input.
pub fn npy(data: &[u8]) -> Result<()> {
    read_npy(data, "fuzz.npy")?;
    Ok(())
}

/// Any bytes as an image file: decode (every built-in format, EXIF orientation, size and memory
/// limits), then the ImageNet recipe (resize and centre crop) and the gray, padded Fashion-MNIST
/// one.
pub fn image(data: &[u8]) -> Result<()> {
    let img = decode_image(data)?;
    for recipe in [Preprocess::imagenet(), Preprocess::named("fashion-mnist")?] {
        let [c, h, w] = recipe.output_shape();
        assert_eq!(recipe.apply(&img).len(), c * h * w);
    }
    Ok(())
}
