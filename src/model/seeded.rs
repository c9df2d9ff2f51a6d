//! Models with seeded weights ([`crate::graph::seeded`]) as if loaded from a file: the ResNet-18
//! reference fixture, whose weights the repository does not hold (tests/fixtures/resnet18/README.md).

use super::{Model, Network};
use crate::graph::arch::ArchSpec;
use crate::graph::seeded::{RESNET18_FIXTURE_SEED, SeededParams, seeded_input};
use crate::tensor::Tensor;
use anyhow::Result;
use std::collections::HashMap;

/// `arch` with seeded weights for `classes` classes, by torchvision name.
pub fn seeded_model(arch: &str, classes: usize, seed: u64) -> Result<Model> {
    let spec = ArchSpec::parse(arch)?;
    let mut params = SeededParams::new(seed, classes);
    spec.build(&mut params, spec.default_input())?;
    Ok(Model {
        network: Network::Arch {
            spec,
            weights: params.tensors,
        },
        metadata: HashMap::new(),
        source: format!("{arch} with seeded weights (seed {seed})"),
    })
}

/// The ResNet-18 fixture: its model and its (2, 3, 224, 224) input, as
/// `scripts/make_resnet18_fixture.py` generated them for the committed reference outputs.
pub fn resnet18_fixture() -> Result<(Model, Tensor)> {
    let model = seeded_model("resnet18", 1000, RESNET18_FIXTURE_SEED)?;
    let shape = vec![2, 3, 224, 224];
    let input = seeded_input(RESNET18_FIXTURE_SEED, shape.iter().product());
    Ok((model, Tensor::new(shape, input)?))
}

/// A safetensors file (float32, torchvision names) of a model's weights, for tools that want a
/// file (the command line).
pub fn to_safetensors(weights: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights
        .iter()
        .map(|(k, t)| {
            let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (k.clone(), t.shape.clone(), b)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(k, shape, b)| {
            Ok((
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(safetensors::tensor::serialize(views, None)?)
}
