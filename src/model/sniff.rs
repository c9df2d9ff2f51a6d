//! Telling what a model file really is when it is not what its name says: a PyTorch pickle
//! (`.pth`, `.pt`, `.bin`) or an ONNX file named `.safetensors`, a safetensors file named `.onnx`,
//! a Hugging Face `transformers` checkpoint. Without this, each got a message about the format
//! it was mistaken for ("the header length field says ..."), which tells the user nothing.

use super::onnx::{Message, proto::ModelProto};

/// What a file that failed to load as safetensors is, by its content, if it can be told.
pub fn not_safetensors(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"PK\x03\x04") {
        let window = &bytes[..bytes.len().min(1 << 20)];
        return Some(if contains(window, b"data.pkl") {
            "a PyTorch checkpoint (torch.save's zip archive with a pickle), not a safetensors file; save the state_dict with safetensors.torch.save_file, or export the model to ONNX"
        } else {
            "a zip archive, not a safetensors file"
        });
    }
    if bytes.len() > 2 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]) {
        return Some(
            "a Python pickle (an old-style PyTorch .pth/.pt checkpoint), not a safetensors file; save the state_dict with safetensors.torch.save_file, or export the model to ONNX",
        );
    }
    if looks_like_onnx(bytes) {
        return Some("an ONNX model, not a safetensors file: rename it to .onnx");
    }
    None
}

/// What a file that failed to load as ONNX is, by its content, if it can be told.
pub fn not_onnx(bytes: &[u8]) -> Option<&'static str> {
    if bytes.get(8) == Some(&b'{') {
        let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        if n <= bytes.len() as u64 - 8 {
            return Some("a safetensors file, not an ONNX model: rename it to .safetensors");
        }
    }
    not_safetensors(bytes).filter(|what| !what.starts_with("an ONNX"))
}

/// A protobuf that decodes as an ONNX model with a graph of at least one node.
fn looks_like_onnx(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x08)
        && ModelProto::decode(bytes)
            .ok()
            .and_then(|m| m.graph)
            .is_some_and(|g| !g.node.is_empty())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Tensor name prefixes of Hugging Face `transformers` ResNet checkpoints (`ResNetModel`,
/// `ResNetForImageClassification`).
const HF_PREFIXES: [&str; 4] = [
    "resnet.embedder.",
    "resnet.encoder.stages.",
    "embedder.embedder.",
    "encoder.stages.",
];

/// If a safetensors file's tensor names are Hugging Face `transformers` ones, the first of them
/// (in name order).
pub fn hugging_face_name<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    names
        .into_iter()
        .filter(|n| HF_PREFIXES.iter().any(|p| n.starts_with(p)))
        .min()
        .map(str::to_string)
}
