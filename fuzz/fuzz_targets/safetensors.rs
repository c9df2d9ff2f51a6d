//! Any bytes as a .safetensors file: load, then (if it loads) build the graph, the way the CLI
//! does. Must return an error or a model, never panic, hang or allocate beyond the input's size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = resnet_wgpu::model::load_bytes(data, "fuzz.safetensors", None) {
        let _ = model.graph();
    }
});
