//! Any bytes as an .onnx file: see `resnet_wgpu::fuzzing::onnx`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = resnet_wgpu::fuzzing::onnx(data);
});
