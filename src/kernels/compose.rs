//! Composing a kernel's WGSL from its body and the shared fragments in `shaders/fragments/`.
//!
//! WGSL has no includes, so the epilogue, the NaN-keeping ReLU, the blocked-layout index and the
//! flat dispatch index would otherwise be pasted into every kernel that needs them (and drift
//! apart). A body names what it needs with a comment line `// include: NAME`, which is valid WGSL,
//! so the files in shaders/ still read as WGSL; [`compose`] replaces each such line by the
//! fragment (once, fragments may include others) and puts the constants the Rust side owns
//! (workgroup size, epilogue flag bits) at the top, so the two sides can never disagree.

use super::train::{ACCUMULATE, ADD, MASK};
use super::{HAS_RESIDUAL, RELU, WORKGROUP};

/// Every fragment by name.
const FRAGMENTS: [(&str, &str); 9] = [
    (
        "flat_index",
        include_str!("../../shaders/fragments/flat_index.wgsl"),
    ),
    ("relu", include_str!("../../shaders/fragments/relu.wgsl")),
    (
        "epilogue",
        include_str!("../../shaders/fragments/epilogue.wgsl"),
    ),
    (
        "layout",
        include_str!("../../shaders/fragments/layout.wgsl"),
    ),
    (
        "train_conv",
        include_str!("../../shaders/fragments/train_conv.wgsl"),
    ),
    (
        "train_batch_norm",
        include_str!("../../shaders/fragments/train_batch_norm.wgsl"),
    ),
    (
        "train_pointwise",
        include_str!("../../shaders/fragments/train_pointwise.wgsl"),
    ),
    (
        "train_pool",
        include_str!("../../shaders/fragments/train_pool.wgsl"),
    ),
    (
        "train_linear",
        include_str!("../../shaders/fragments/train_linear.wgsl"),
    ),
];

/// The names of every fragment, as `// include:` lines name them.
pub fn fragment_names() -> impl Iterator<Item = &'static str> {
    FRAGMENTS.iter().map(|&(name, _)| name)
}

/// The constants every kernel sees, written from the Rust constants.
fn header() -> String {
    format!(
        "const WORKGROUP: u32 = {WORKGROUP}u;\nconst HAS_RESIDUAL: u32 = {HAS_RESIDUAL}u;\nconst RELU: u32 = {RELU}u;\nconst ACCUMULATE: u32 = {ACCUMULATE}u;\nconst MASK: u32 = {MASK}u;\nconst ADD: u32 = {ADD}u;\n"
    )
}

/// The fragment a line includes, if it is an include line.
fn include_of(line: &str) -> Option<&str> {
    line.trim().strip_prefix("// include:").map(str::trim)
}

/// The complete module: `enable` directives (which WGSL wants first), the shared constants, then
/// the body with every include expanded. Panics on an unknown fragment name: sources are part of
/// the program, and tests/shaders.rs composes every kernel.
pub fn compose(name: &str, body: &str) -> String {
    let mut enables = String::new();
    let mut text = String::new();
    let mut included: Vec<&str> = Vec::new();
    expand(name, body, &mut enables, &mut text, &mut included);
    format!(
        "{enables}// {name}, composed by src/kernels/compose.rs\n{}{text}",
        header()
    )
}

fn expand<'a>(
    name: &str,
    body: &'a str,
    enables: &mut String,
    text: &mut String,
    included: &mut Vec<&'a str>,
) {
    for line in body.lines() {
        if line.starts_with("enable ") {
            if !enables.contains(line) {
                enables.push_str(line);
                enables.push('\n');
            }
        } else if let Some(fragment) = include_of(line) {
            let Some(&(key, source)) = FRAGMENTS.iter().find(|(k, _)| *k == fragment) else {
                panic!("{name}: unknown WGSL fragment '{fragment}'");
            };
            if !included.contains(&key) {
                included.push(key);
                expand(name, source, enables, text, included);
                text.push('\n');
            }
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_expand_once_and_enables_come_first() {
        let body = "enable f16;\n// include: epilogue\n// include: relu\nfn main() {}\n";
        let src = compose("test", body);
        assert!(src.starts_with("enable f16;\n"), "{src}");
        assert_eq!(src.matches("fn relu4").count(), 1, "{src}");
        assert_eq!(src.matches("fn epilogue").count(), 1, "{src}");
        assert!(src.contains(&format!("const WORKGROUP: u32 = {WORKGROUP}u;")));
        assert!(!src.contains("// include:"), "{src}");
    }

    #[test]
    #[should_panic(expected = "unknown WGSL fragment 'nope'")]
    fn unknown_fragments_are_refused() {
        compose("test", "// include: nope\n");
    }
}
