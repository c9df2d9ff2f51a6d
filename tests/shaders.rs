//! Every kernel the engine can build (each file in shaders/, composed with its fragments, and every
//! generated convolution variant in every precision, enumerated from `Kernel::all`) parses and
//! validates with naga, so a shader error is reported with its kernel and line before any adapter
//! sees it. Also checks that each kernel's params struct has the WGSL name and the size the Rust
//! side writes, and that every workgroup is `kernels::WORKGROUP` wide. No GPU needed.

#[path = "common/naga_caps.rs"]
mod naga_caps;

use naga::valid::{ValidationFlags, Validator};
use naga_caps::capabilities;
use resnet_wgpu::kernels::{Kernel, TrainKernel, WORKGROUP, fragment_names};
use std::path::PathBuf;

fn shader_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shaders")
}

fn parse_and_validate(kernel: Kernel) -> naga::Module {
    let source = kernel.source();
    let name = format!("{}.wgsl", kernel.name());
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(&source, &name)));
    Validator::new(ValidationFlags::all(), capabilities(kernel))
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(&source, &name)));
    module
}

#[test]
fn every_kernel_validates_with_one_entry_point_of_the_shared_workgroup_size() {
    let all = Kernel::all();
    assert!(
        all.len() > Kernel::FILES.len() + 50,
        "only {} kernels",
        all.len()
    );
    for kernel in all {
        let module = parse_and_validate(kernel);
        let [main] = module.entry_points.as_slice() else {
            panic!("{}: expected one entry point", kernel.name());
        };
        assert_eq!(main.name, "main", "{}", kernel.name());
        assert_eq!(
            main.workgroup_size,
            [WORKGROUP, 1, 1],
            "{}: workgroup size",
            kernel.name()
        );
        assert!(
            !kernel.source().contains("// include:"),
            "{}: an include was left unexpanded",
            kernel.name()
        );
    }
}

#[test]
fn every_shader_file_is_a_kernel_and_every_fragment_is_known() {
    let names: Vec<String> = Kernel::FILES
        .iter()
        .map(|k| k.name().into_owned())
        .collect();
    let mut files = 0;
    for entry in std::fs::read_dir(shader_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(
            names.contains(&stem),
            "{} is not listed in kernels::Kernel::FILES",
            path.display()
        );
        files += 1;
    }
    assert_eq!(files, Kernel::FILES.len());
    let known: Vec<&str> = fragment_names().collect();
    for entry in std::fs::read_dir(shader_dir().join("fragments")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert!(
            known.contains(&stem),
            "{} is not a fragment kernels::compose knows",
            path.display()
        );
    }
}

#[test]
fn every_training_shader_file_is_a_training_kernel() {
    let names: Vec<&str> = TrainKernel::ALL.iter().map(|k| k.name()).collect();
    let mut files = 0;
    for entry in std::fs::read_dir(shader_dir().join("train")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(
            names.contains(&stem.as_str()),
            "{} is not listed in kernels::TrainKernel::ALL",
            path.display()
        );
        files += 1;
    }
    assert_eq!(files, TrainKernel::ALL.len());
}

#[test]
fn params_structs_match_between_wgsl_and_rust() {
    for kernel in Kernel::all() {
        let module = parse_and_validate(kernel);
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let uniform = module
            .global_variables
            .iter()
            .find(|(_, v)| v.space == naga::AddressSpace::Uniform)
            .unwrap_or_else(|| panic!("{}: no uniform params", kernel.name()))
            .1;
        let (rust_name, rust_size) = kernel.params();
        let wgsl_name = module.types[uniform.ty].name.as_deref();
        assert_eq!(
            wgsl_name,
            Some(rust_name),
            "{}: params struct",
            kernel.name()
        );
        let wgsl_size = layouter[uniform.ty].size as usize;
        assert_eq!(
            wgsl_size,
            rust_size,
            "{}: WGSL {rust_name} is {wgsl_size} bytes, Rust's {rust_size}",
            kernel.name()
        );
    }
}
