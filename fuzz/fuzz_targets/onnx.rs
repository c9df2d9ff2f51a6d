//! Any bytes as an .onnx file (no external data): decode, fold and import the graph.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = resnet_wgpu::model::load_bytes(data, "fuzz.onnx", None) {
        let _ = model.graph();
    }
});
