//! Writes one of the paper's architectures with synthetic (seeded, random but well-scaled)
//! weights as a safetensors file with torchvision names, e.g. to measure how fast and with how
//! much memory a large model loads:
//!
//! ```sh
//! cargo run --release --example synthetic_model -- resnet50 /tmp/resnet50.safetensors
//! ```

use resnet_wgpu::ArchSpec;
use resnet_wgpu::graph::params::{ParamSource, SyntheticParams};
use resnet_wgpu::tensor::Tensor;

/// Hands out synthetic weights and remembers each one under its name.
struct Recorder {
    inner: SyntheticParams,
    tensors: Vec<(String, Tensor)>,
}

impl ParamSource for Recorder {
    fn take(&mut self, name: &str, shape: &[usize]) -> resnet_wgpu::Result<Tensor> {
        let t = self.inner.take(name, shape)?;
        self.tensors.push((name.to_string(), t.clone()));
        Ok(t)
    }

    fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.inner.shape_of(name)
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch, out] = args.as_slice() else {
        anyhow::bail!("usage: synthetic_model ARCH OUT.safetensors");
    };
    let spec = ArchSpec::parse(arch)?;
    let mut params = Recorder {
        inner: SyntheticParams::new(1, spec.default_classes()),
        tensors: Vec::new(),
    };
    spec.build(&mut params, spec.default_input())?;
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = params
        .tensors
        .into_iter()
        .map(|(name, t)| (name, bytemuck::cast_slice(&t.data).to_vec(), t.shape))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(name, data, shape)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)?;
            Ok((name.clone(), view))
        })
        .collect::<anyhow::Result<_>>()?;
    let metadata = std::collections::HashMap::from([("arch".to_string(), spec.name())]);
    safetensors::serialize_to_file(views, Some(metadata), out.as_ref())?;
    println!("wrote {out} ({} tensors)", bytes.len());
    Ok(())
}
