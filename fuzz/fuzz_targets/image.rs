//! Any bytes as an image file, decoded and preprocessed: see `resnet_wgpu::fuzzing::image`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet_wgpu::fuzzing::image(data);
});
