//! Every WGSL file in shaders/ parses and validates with naga (what WebGPU implementations apply),
//! so a shader error is reported with its file and line before any adapter sees it. Also checks
//! that each kernel's params struct has the same size in WGSL and in Rust. No GPU needed.

use naga::valid::{Capabilities, ValidationFlags, Validator};
use resnet_wgpu::gpu::Kernel;
use resnet_wgpu::ops::params_size;
use std::path::PathBuf;

fn shader_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders")
}

fn parse_and_validate(path: &std::path::Path, source: &str) -> naga::Module {
    let name = path.display().to_string();
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(source, &name)));
    Validator::new(ValidationFlags::all(), Capabilities::default())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(source, &name)));
    module
}

#[test]
fn every_shader_file_validates() {
    let mut count = 0;
    for entry in std::fs::read_dir(shader_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wgsl") {
            let source = std::fs::read_to_string(&path).unwrap();
            let module = parse_and_validate(&path, &source);
            assert!(
                module.entry_points.iter().any(|e| e.name == "main"),
                "{}: no entry point `main`",
                path.display()
            );
            count += 1;
        }
    }
    assert!(count >= Kernel::FILES.len(), "found only {count} shaders");
}

#[test]
fn every_shader_file_is_a_kernel() {
    let names: Vec<String> = Kernel::FILES
        .iter()
        .map(|k| k.name().into_owned())
        .collect();
    for entry in std::fs::read_dir(shader_dir()).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(
            names.contains(&stem),
            "{} is not listed in gpu::Kernel",
            path.display()
        );
    }
}

#[test]
fn params_structs_match_between_wgsl_and_rust() {
    for kernel in Kernel::FILES {
        let module = parse_and_validate(
            &shader_dir().join(format!("{}.wgsl", kernel.name())),
            &kernel.source(),
        );
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let uniform = module
            .global_variables
            .iter()
            .find(|(_, v)| v.space == naga::AddressSpace::Uniform)
            .unwrap_or_else(|| panic!("{}: no uniform params", kernel.name()))
            .1;
        let wgsl_size = layouter[uniform.ty].size as usize;
        assert_eq!(
            wgsl_size,
            params_size(kernel),
            "{}: WGSL params struct is {wgsl_size} bytes, Rust's {}",
            kernel.name(),
            params_size(kernel)
        );
    }
}
