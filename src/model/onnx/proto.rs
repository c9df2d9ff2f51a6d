//! The ONNX protobuf messages (`package onnx`), generated at build time from the vendored
//! `proto/onnx/onnx.proto` by `build.rs`.
#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
