//! Generates the ONNX protobuf types from the vendored `proto/onnx/onnx.proto` with a pure-Rust
//! protobuf compiler (protox), so building needs no system `protoc`.

fn main() {
    let proto = "proto/onnx/onnx.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto/onnx"]).unwrap_or_else(|e| panic!("{proto}: {e}"));
    prost_build::Config::new()
        // The proto's comments hold indented text that rustdoc would run as doctests.
        .disable_comments(["."])
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("{proto}: {e}"));
}
