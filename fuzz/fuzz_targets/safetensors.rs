//! Any bytes as a .safetensors file: see `resnet_wgpu::fuzzing::safetensors`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet_wgpu::fuzzing::safetensors(data);
});
