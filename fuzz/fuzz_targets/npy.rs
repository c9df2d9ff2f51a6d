//! Any bytes as the `run` command's .npy input: see `resnet_wgpu::fuzzing::npy`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet_wgpu::fuzzing::npy(data);
});
