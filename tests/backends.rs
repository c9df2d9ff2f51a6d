//! Every kernel through every naga back end, without the hardware: each kernel the engine can build
//! (the files in shaders/ and every generated convolution variant in every precision, enumerated
//! from `Kernel::all`) is written by naga as SPIR-V, MSL, HLSL and GLSL, the way wgpu's Vulkan,
//! Metal, DX12 and GL back ends would write it, and the output is checked by a real tool where
//! Debian has one:
//!
//! - SPIR-V 1.3 for Vulkan 1.1 (the oldest SPIR-V with subgroup operations) and SPIR-V 1.6 for
//!   Vulkan 1.3 (what wgpu writes for every current driver), each through `spirv-val` for that
//!   environment (package spirv-tools).
//! - HLSL at the lowest shader model wgpu's DX12 back end needs for the kernel (5.1; 6.0 for wave
//!   operations; 6.2 for 16-bit types), compiled by glslang's HLSL front end
//!   (`glslangValidator -D -V`, package glslang-tools). DXC, the DirectX compiler, is not packaged
//!   in Debian bookworm, and no PyPI wheel ships it for Linux (slangpy's wheel brings Slang with
//!   glslang but no libdxcompiler), so glslang is the HLSL compiler we can have. It cannot take
//!   the f16 kernels: it has no templated `ByteAddressBuffer.Load<half4>` (SM 6.2) and no half
//!   `mad`, both of which DXC accepts; those are written and counted as not checked.
//! - GLSL ES 3.10 and GLSL 4.30 compute (the oldest versions with compute shaders, and with
//!   GL_KHR_shader_subgroup), through `glslangValidator` (package glslang-tools).
//! - MSL 2.1 (the oldest Metal language wgpu targets, and the first with simdgroup functions) is
//!   written, with the resource slots wgpu's Metal back end assigns, but not compiled: Apple's
//!   Metal compiler runs only on macOS and Windows and is in no registry we can reach.
//!
//! Each back end is given the capabilities its target would have (subgroups and f16 where the
//! kernel needs them and the back end supports them); where it cannot write a kernel (naga's GLSL
//! writer has no 16-bit floats; wgpu's GL back end never offers SHADER_F16 either) the pair is
//! skipped with the reason, and the summary says so. A missing tool fails the test: install
//! spirv-tools and glslang-tools (.ci/run does). So a shader that would break on Metal or DX12 is
//! caught on a Linux machine with no GPU; run with `-- --nocapture` to see the summary. A second
//! test plants broken SPIR-V, HLSL and GLSL to show each check fails, naming kernel and target.

#[path = "common/naga_caps.rs"]
mod naga_caps;

use naga::back::{glsl, hlsl, msl, spv};
use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::{AddressSpace, Module, ResourceBinding, ShaderStage, StorageAccess};
use naga_caps::capabilities;
use resnet_wgpu::kernels::Kernel;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Where a back end's output goes: the target it stands for, and the tool that checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    SpirvVulkan11,
    SpirvVulkan13,
    Msl21,
    Hlsl,
    GlslEs310,
    Glsl430,
}

impl Target {
    const ALL: [Target; 6] = [
        Target::SpirvVulkan11,
        Target::SpirvVulkan13,
        Target::Msl21,
        Target::Hlsl,
        Target::GlslEs310,
        Target::Glsl430,
    ];

    fn name(self) -> &'static str {
        match self {
            Target::SpirvVulkan11 => "SPIR-V 1.3 (Vulkan 1.1)",
            Target::SpirvVulkan13 => "SPIR-V 1.6 (Vulkan 1.3)",
            Target::Msl21 => "MSL 2.1",
            Target::Hlsl => "HLSL (SM 5.1/6.0/6.2)",
            Target::GlslEs310 => "GLSL ES 3.10",
            Target::Glsl430 => "GLSL 4.30",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Target::SpirvVulkan11 => "vk11.spv",
            Target::SpirvVulkan13 => "vk13.spv",
            Target::Msl21 => "metal",
            Target::Hlsl => "comp.hlsl",
            Target::GlslEs310 => "es310.comp",
            Target::Glsl430 => "gl430.comp",
        }
    }

    /// What naga's back end for this target can write at all.
    fn supported(self) -> Capabilities {
        match self {
            Target::SpirvVulkan11 | Target::SpirvVulkan13 => spv::supported_capabilities(),
            Target::Msl21 => msl::supported_capabilities(),
            Target::Hlsl => hlsl::supported_capabilities(),
            Target::GlslEs310 | Target::Glsl430 => glsl::supported_capabilities(),
        }
    }
}

/// One back end's output for one kernel.
enum Output {
    Text(String),
    Words(Vec<u32>),
}

/// Bounds checks as wgpu's checked path (the one the tests and the portability suite use) asks.
fn policies() -> BoundsCheckPolicies {
    BoundsCheckPolicies {
        index: BoundsCheckPolicy::Restrict,
        buffer: BoundsCheckPolicy::Restrict,
        image_load: BoundsCheckPolicy::Restrict,
        binding_array: BoundsCheckPolicy::Unchecked,
    }
}

/// The module's resource bindings in (group, binding) order, with their address spaces.
fn bindings(module: &Module) -> Vec<(ResourceBinding, AddressSpace)> {
    let mut all: Vec<_> = module
        .global_variables
        .iter()
        .filter_map(|(_, g)| g.binding.map(|b| (b, g.space)))
        .collect();
    all.sort_by_key(|(b, _)| (b.group, b.binding));
    all
}

/// The SPIR-V capabilities wgpu's Vulkan back end declares for a device with the kernel's
/// features (wgpu-hal `vulkan/adapter.rs`): the always-available ones, plus the group
/// operations for SUBGROUP and Float16 for SHADER_F16.
fn spirv_capabilities(kernel: Kernel) -> naga::FastHashSet<spv::Capability> {
    use spv::Capability as C;
    let mut caps = vec![
        C::Shader,
        C::Matrix,
        C::Sampled1D,
        C::Image1D,
        C::ImageQuery,
        C::DerivativeControl,
        C::StorageImageExtendedFormats,
        C::SampledCubeArray,
        C::SampleRateShading,
    ];
    let needs = kernel.needs();
    if needs.contains(wgpu::Features::SUBGROUP) {
        caps.extend([
            C::GroupNonUniform,
            C::GroupNonUniformVote,
            C::GroupNonUniformArithmetic,
            C::GroupNonUniformBallot,
            C::GroupNonUniformShuffle,
            C::GroupNonUniformShuffleRelative,
            C::GroupNonUniformQuad,
        ]);
    }
    if needs.contains(wgpu::Features::SHADER_F16) {
        caps.push(C::Float16);
    }
    caps.into_iter().collect()
}

fn write_spirv(
    kernel: Kernel,
    module: &Module,
    info: &ModuleInfo,
    lang_version: (u8, u8),
) -> Result<Output, String> {
    let options = spv::Options {
        lang_version,
        flags: spv::WriterFlags::LABEL_VARYINGS,
        capabilities: Some(spirv_capabilities(kernel)),
        bounds_check_policies: policies(),
        zero_initialize_workgroup_memory: if lang_version >= (1, 6) {
            spv::ZeroInitializeWorkgroupMemoryMode::Native
        } else {
            spv::ZeroInitializeWorkgroupMemoryMode::Polyfill
        },
        use_storage_input_output_16: false,
        // Bindings keep their WGSL group and binding, as wgpu's Vulkan back end does.
        fake_missing_bindings: true,
        ..spv::Options::default()
    };
    let pipeline = spv::PipelineOptions {
        shader_stage: ShaderStage::Compute,
        entry_point: "main".into(),
    };
    spv::write_vec(module, info, &options, Some(&pipeline))
        .map(Output::Words)
        .map_err(|e| format!("{e:?}"))
}

fn write_msl(module: &Module, info: &ModuleInfo) -> Result<Output, String> {
    // Buffer slots in binding order, then the array-sizes buffer, as wgpu's Metal back end
    // assigns them.
    let mut resources = msl::BindingMap::default();
    let mut slot: msl::Slot = 0;
    for (binding, space) in bindings(module) {
        let mutable = match space {
            AddressSpace::Storage { access } => access.contains(StorageAccess::STORE),
            _ => false,
        };
        resources.insert(
            binding,
            msl::BindTarget {
                buffer: Some(slot),
                mutable,
                ..Default::default()
            },
        );
        slot += 1;
    }
    let entry = msl::EntryPointResources {
        resources,
        immediates_buffer: None,
        sizes_buffer: Some(slot),
    };
    let options = msl::Options {
        lang_version: (2, 1),
        per_entry_point_map: BTreeMap::from([("main".to_string(), entry)]),
        fake_missing_bindings: false,
        bounds_check_policies: policies(),
        zero_initialize_workgroup_memory: true,
        ..msl::Options::default()
    };
    let pipeline = msl::PipelineOptions {
        entry_point: Some((ShaderStage::Compute, "main".into())),
        ..Default::default()
    };
    let (text, translation) =
        msl::write_string(module, info, &options, &pipeline).map_err(|e| format!("{e:?}"))?;
    // An entry point naga could not bind is an error here, not a silently missing function.
    match translation.entry_point_names.as_slice() {
        [Ok(_)] => Ok(Output::Text(text)),
        other => Err(format!("entry point names {other:?}")),
    }
}

/// The lowest shader model wgpu's DX12 back end offers the kernel's features at.
fn shader_model(kernel: Kernel) -> hlsl::ShaderModel {
    let needs = kernel.needs();
    if needs.contains(wgpu::Features::SHADER_F16) {
        hlsl::ShaderModel::V6_2
    } else if needs.contains(wgpu::Features::SUBGROUP) {
        hlsl::ShaderModel::V6_0
    } else {
        hlsl::ShaderModel::V5_1
    }
}

fn write_hlsl(kernel: Kernel, module: &Module, info: &ModuleInfo) -> Result<Output, String> {
    let options = hlsl::Options {
        shader_model: shader_model(kernel),
        // Register = binding, space = group: what wgpu's DX12 root signature maps to.
        fake_missing_bindings: true,
        zero_initialize_workgroup_memory: true,
        restrict_indexing: true,
        ..hlsl::Options::default()
    };
    let pipeline = hlsl::PipelineOptions {
        entry_point: Some((ShaderStage::Compute, "main".into())),
    };
    let mut text = String::new();
    let reflection = hlsl::Writer::new(&mut text, &options, &pipeline)
        .write(module, info, None)
        .map_err(|e| format!("{e:?}"))?;
    match reflection.entry_point_names.as_slice() {
        [Ok(name)] if name == "main" => Ok(Output::Text(text)),
        other => Err(format!("entry point names {other:?}")),
    }
}

fn write_glsl(
    module: &Module,
    info: &ModuleInfo,
    version: glsl::Version,
) -> Result<Output, String> {
    // Uniform and storage buffers count separately, in binding order, as in wgpu's GL back end.
    let mut binding_map = glsl::BindingMap::default();
    let (mut uniforms, mut storage) = (0u8, 0u8);
    for (binding, space) in bindings(module) {
        let counter = match space {
            AddressSpace::Uniform => &mut uniforms,
            _ => &mut storage,
        };
        binding_map.insert(binding, *counter);
        *counter += 1;
    }
    let options = glsl::Options {
        version,
        writer_flags: glsl::WriterFlags::FORCE_POINT_SIZE,
        binding_map,
        zero_initialize_workgroup_memory: true,
    };
    let pipeline = glsl::PipelineOptions {
        shader_stage: ShaderStage::Compute,
        entry_point: "main".into(),
        multiview: None,
    };
    let mut text = String::new();
    glsl::Writer::new(&mut text, module, info, &options, &pipeline, policies())
        .and_then(|mut w| w.write())
        .map_err(|e| e.to_string())?;
    Ok(Output::Text(text))
}

fn write(
    kernel: Kernel,
    target: Target,
    module: &Module,
    info: &ModuleInfo,
) -> Result<Output, String> {
    match target {
        Target::SpirvVulkan11 => write_spirv(kernel, module, info, (1, 3)),
        Target::SpirvVulkan13 => write_spirv(kernel, module, info, (1, 6)),
        Target::Msl21 => write_msl(module, info),
        Target::Hlsl => write_hlsl(kernel, module, info),
        Target::GlslEs310 => write_glsl(
            module,
            info,
            glsl::Version::Embedded {
                version: 310,
                is_webgl: false,
            },
        ),
        Target::Glsl430 => write_glsl(module, info, glsl::Version::Desktop(430)),
    }
}

/// Why a back end may decline a kernel, checked against what it said: anything else it fails
/// on is a failure of the test.
fn expected_skip(kernel: Kernel, target: Target, error: &str) -> Option<&'static str> {
    let f16 = kernel.needs().contains(wgpu::Features::SHADER_F16);
    match target {
        Target::GlslEs310 | Target::Glsl430 if f16 && error.contains("Float, width: 2") => Some(
            "naga's GLSL writer has no 16-bit floats (and wgpu's GL back end never offers \
             SHADER_F16)",
        ),
        _ => None,
    }
}

/// Why a written file goes unchecked, where it does.
fn unchecked(kernel: Kernel, target: Target) -> Option<&'static str> {
    match target {
        Target::Msl21 => {
            Some("no Metal compiler on Linux (Apple's runs on macOS and Windows, in no registry)")
        }
        // DXC compiles both; glslang's HLSL front end stops at the first f16 load or mad.
        Target::Hlsl if kernel.needs().contains(wgpu::Features::SHADER_F16) => Some(
            "glslang's HLSL front end lacks SM 6.2's templated ByteAddressBuffer.Load<half4> and \
             a half overload of mad (DXC, which has both, is not in Debian or on PyPI)",
        ),
        // naga zero-initialises workgroup memory (as wgpu's DX12 back end asks) with a cast of 0
        // to the array type, `(float4[64])0`, which FXC and DXC accept and glslang refuses: every kernel
        // with workgroup memory.
        Target::Hlsl if kernel.source().contains("var<workgroup>") => Some(
            "glslang's HLSL front end refuses naga's zero-initialisation of workgroup arrays, \
             `(float4[N])0` (FXC and DXC accept it; the workgroup-tiled kernels and the training \
             reductions)",
        ),
        _ => None,
    }
}

/// GLSL files checked per glslangValidator run (each is compiled on its own; one process saves
/// the start-up, ~0.1 s here, per file).
const GLSL_BATCH: usize = 16;

/// The command that checks `files` (one, or a GLSL batch) of one target; `f16`: they use f16.
fn checker(target: Target, f16: bool, files: &[PathBuf]) -> Command {
    let mut cmd;
    match target {
        Target::SpirvVulkan11 | Target::SpirvVulkan13 => {
            cmd = Command::new("spirv-val");
            let env = if target == Target::SpirvVulkan11 {
                "vulkan1.1"
            } else {
                "vulkan1.3"
            };
            cmd.args(["--target-env", env]);
        }
        Target::Hlsl => {
            // -V: glslang checks HLSL only while making SPIR-V; it is written next to the HLSL.
            cmd = Command::new("glslangValidator");
            cmd.args([
                "-D",
                "-V",
                "-S",
                "comp",
                "-e",
                "main",
                "--target-env",
                "vulkan1.1",
            ]);
            if f16 {
                cmd.arg("--hlsl-enable-16bit-types");
            }
            cmd.arg("-o").arg(files[0].with_extension("spv"));
        }
        Target::GlslEs310 | Target::Glsl430 => {
            cmd = Command::new("glslangValidator");
            cmd.args(["-S", "comp"]);
        }
        Target::Msl21 => unreachable!("MSL is not checked"),
    }
    cmd.args(files);
    cmd
}

/// Fails loudly, naming the package, where a checking tool is not installed.
fn require_tool(program: &str, package: &str) {
    let found = Command::new(program).arg("--version").output();
    assert!(
        found.is_ok(),
        "`{program}` is not installed: `apt-get install -y {package}` (.ci/run installs it); \
         the back-end test checks every kernel's output with it and never skips it"
    );
}

/// One tool run over the files of `kernels` (the same target).
struct Check {
    kernels: Vec<(String, PathBuf)>,
    target: Target,
    command: Command,
}

/// What a failed run said about each of its files: glslangValidator prints each file's path on
/// a line of its own before that file's messages.
fn attribute(check: &Check, message: &str) -> Vec<(String, String)> {
    if check.kernels.len() == 1 {
        return vec![(check.kernels[0].0.clone(), message.trim().to_string())];
    }
    let mut said: Vec<(String, String)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in message.lines() {
        if let Some(i) = check
            .kernels
            .iter()
            .position(|(_, f)| f.as_os_str() == line.trim())
        {
            current = Some(i);
            said.push((check.kernels[i].0.clone(), String::new()));
        } else if current.is_some() {
            let text = &mut said.last_mut().unwrap().1;
            text.push_str(line);
            text.push('\n');
        }
    }
    said.retain(|(_, text)| text.contains("ERROR"));
    if said.is_empty() {
        // Failed, but no file's messages say why: blame the whole batch.
        let names: Vec<&str> = check.kernels.iter().map(|(k, _)| k.as_str()).collect();
        said.push((names.join(", "), message.trim().to_string()));
    }
    said
}

/// Runs the checks on every core, and returns the failures, each naming kernel, target, tool.
fn run_checks(checks: Vec<Check>) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let checks: Vec<Mutex<Check>> = checks.into_iter().map(Mutex::new).collect();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(check) = checks.get(i) else { break };
                    let mut check = check.lock().unwrap();
                    let program = check.command.get_program().to_string_lossy().into_owned();
                    let message = match check.command.output() {
                        Ok(out) if out.status.success() => continue,
                        Ok(out) => format!(
                            "{}{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        ),
                        Err(e) => format!("could not run {program}: {e}"),
                    };
                    let mut failures = failures.lock().unwrap();
                    for (kernel, text) in attribute(&check, &message) {
                        failures.push(format!(
                            "{kernel} on {} ({program}):\n{}",
                            check.target.name(),
                            text.trim()
                        ));
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap()
}

fn scratch_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("backends-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_kernel_is_written_and_checked_by_every_naga_back_end() {
    require_tool("spirv-val", "spirv-tools");
    require_tool("glslangValidator", "glslang-tools");
    let start = Instant::now();
    let dir = scratch_dir();
    let kernels = Kernel::all();
    assert!(
        kernels.len() > Kernel::FILES.len() + 50,
        "only {} kernels",
        kernels.len()
    );

    let mut failures = Vec::new();
    let mut checks = Vec::new();
    let mut glsl: BTreeMap<Target, Vec<(String, PathBuf)>> = BTreeMap::new();
    let mut written: BTreeMap<Target, usize> = BTreeMap::new();
    let mut checked: BTreeMap<Target, usize> = BTreeMap::new();
    let mut skipped: BTreeMap<(Target, &str), usize> = BTreeMap::new();
    let mut not_checked: BTreeMap<(Target, &str), usize> = BTreeMap::new();
    for &kernel in &kernels {
        let name = kernel.name();
        let source = kernel.source();
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(&source, &name)));
        let caps = capabilities(kernel);
        for target in Target::ALL {
            assert!(
                target.supported().contains(caps),
                "{name}: naga's {} back end cannot write {caps:?}",
                target.name()
            );
        }
        let info = Validator::new(ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string_with_path(&source, &name)));
        for target in Target::ALL {
            let output = match write(kernel, target, &module, &info) {
                Ok(output) => output,
                Err(e) => {
                    match expected_skip(kernel, target, &e) {
                        Some(reason) => *skipped.entry((target, reason)).or_default() += 1,
                        None => failures.push(format!("{name} on {}: naga: {e}", target.name())),
                    }
                    continue;
                }
            };
            *written.entry(target).or_default() += 1;
            let file = dir.join(format!("{name}.{}", target.extension()));
            match output {
                Output::Text(text) => std::fs::write(&file, text),
                Output::Words(words) => std::fs::write(&file, bytemuck::cast_slice(&words)),
            }
            .unwrap();
            if let Some(reason) = unchecked(kernel, target) {
                *not_checked.entry((target, reason)).or_default() += 1;
                continue;
            }
            *checked.entry(target).or_default() += 1;
            match target {
                Target::GlslEs310 | Target::Glsl430 => glsl
                    .entry(target)
                    .or_default()
                    .push((name.to_string(), file)),
                _ => checks.push(Check {
                    command: checker(
                        target,
                        kernel.needs().contains(wgpu::Features::SHADER_F16),
                        std::slice::from_ref(&file),
                    ),
                    kernels: vec![(name.to_string(), file)],
                    target,
                }),
            }
        }
    }
    for (target, files) in glsl {
        for batch in files.chunks(GLSL_BATCH) {
            let paths: Vec<PathBuf> = batch.iter().map(|(_, f)| f.clone()).collect();
            checks.push(Check {
                command: checker(target, false, &paths),
                kernels: batch.to_vec(),
                target,
            });
        }
    }
    let written_at = start.elapsed();
    failures.extend(run_checks(checks));
    failures.sort();

    println!(
        "{} kernels x {} targets: written in {:.1} s, checked by {:.1} s",
        kernels.len(),
        Target::ALL.len(),
        written_at.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    for target in Target::ALL {
        let tool = match target {
            Target::SpirvVulkan11 => "spirv-val --target-env vulkan1.1",
            Target::SpirvVulkan13 => "spirv-val --target-env vulkan1.3",
            Target::Hlsl => "glslangValidator -D (its HLSL front end)",
            Target::GlslEs310 | Target::Glsl430 => "glslangValidator",
            Target::Msl21 => "-",
        };
        println!(
            "  {:<24} written {:>3}, checked {:>3} by {tool}",
            target.name(),
            written.get(&target).unwrap_or(&0),
            checked.get(&target).unwrap_or(&0),
        );
    }
    for ((target, reason), n) in &skipped {
        println!("  {:<24} not written {n:>3}: {reason}", target.name());
    }
    for ((target, reason), n) in &not_checked {
        println!("  {:<24} not checked {n:>3}: {reason}", target.name());
    }
    assert!(
        failures.is_empty(),
        "{} kernel/back-end pairs failed (outputs kept in {}):\n\n{}",
        failures.len(),
        dir.display(),
        failures.join("\n\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The checks can fail: a corrupt SPIR-V module, an HLSL and a GLSL file with an undeclared
/// name are each reported, naming their kernel and target, and in a GLSL batch only the broken
/// file is blamed.
#[test]
fn a_broken_output_is_reported_with_its_kernel_and_target() {
    require_tool("spirv-val", "spirv-tools");
    require_tool("glslangValidator", "glslang-tools");
    let dir = scratch_dir();
    let kernel = Kernel::Add;
    let source = kernel.source();
    let module = naga::front::wgsl::parse_str(&source).unwrap();
    let info = Validator::new(ValidationFlags::all(), capabilities(kernel))
        .validate(&module)
        .unwrap();
    let text = |target| match write(kernel, target, &module, &info).unwrap() {
        Output::Text(text) => text,
        Output::Words(_) => unreachable!(),
    };
    let mut checks = Vec::new();

    let Output::Words(mut words) = write(kernel, Target::SpirvVulkan13, &module, &info).unwrap()
    else {
        unreachable!()
    };
    words.truncate(words.len() - 3);
    let spv = dir.join("planted.vk13.spv");
    std::fs::write(&spv, bytemuck::cast_slice(&words)).unwrap();
    checks.push(Check {
        command: checker(Target::SpirvVulkan13, false, std::slice::from_ref(&spv)),
        kernels: vec![("planted_spirv".into(), spv)],
        target: Target::SpirvVulkan13,
    });

    let hlsl = dir.join("planted.comp.hlsl");
    let broken = text(Target::Hlsl).replacen("return;", "planted_undeclared = 1u;\nreturn;", 1);
    assert!(
        broken.contains("planted_undeclared"),
        "the HLSL has no `return;` to plant before"
    );
    std::fs::write(&hlsl, broken).unwrap();
    checks.push(Check {
        command: checker(Target::Hlsl, false, std::slice::from_ref(&hlsl)),
        kernels: vec![("planted_hlsl".into(), hlsl)],
        target: Target::Hlsl,
    });

    let good = text(Target::GlslEs310);
    let broken = good.replacen(
        "void main() {",
        "void main() {\n    planted_undeclared = 1u;",
        1,
    );
    assert_ne!(
        good, broken,
        "the GLSL has no `void main() {{` to plant into"
    );
    let mut batch = Vec::new();
    for (name, glsl) in [
        ("good_a", &good),
        ("planted_glsl", &broken),
        ("good_b", &good),
    ] {
        let file = dir.join(format!("{name}.es310.comp"));
        std::fs::write(&file, glsl).unwrap();
        batch.push((name.to_string(), file));
    }
    let paths: Vec<PathBuf> = batch.iter().map(|(_, f)| f.clone()).collect();
    checks.push(Check {
        command: checker(Target::GlslEs310, false, &paths),
        kernels: batch,
        target: Target::GlslEs310,
    });

    let mut failures = run_checks(checks);
    failures.sort();
    let heads: Vec<&str> = failures.iter().map(|f| f.lines().next().unwrap()).collect();
    assert_eq!(
        heads,
        [
            "planted_glsl on GLSL ES 3.10 (glslangValidator):",
            "planted_hlsl on HLSL (SM 5.1/6.0/6.2) (glslangValidator):",
            "planted_spirv on SPIR-V 1.6 (Vulkan 1.3) (spirv-val):",
        ],
        "{failures:#?}"
    );
    assert!(
        failures[0].contains("planted_undeclared"),
        "{}",
        failures[0]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
