//! Any bytes as the `run` command's .npy input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet_wgpu::model::npy::read_npy(data, "fuzz.npy");
});
