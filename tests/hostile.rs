//! Hostile and broken input (issue 7): every bad model file, input tensor, image and GPU condition
//! is refused with one clear message naming the file and what is wrong, never a panic, a hang or an
//! allocation sized by what a file claims rather than what it holds. Files are built here, byte by
//! byte where the encoders would refuse to make them. ONNX-specific errors (bad protobuf, cycles,
//! unsupported ops) live in tests/onnx.rs.

mod common;

use common::{check_close, gpu, local_fixture};
use resnet_wgpu::fuzzing;
use resnet_wgpu::gpu::{GpuContext, GpuOptions, select_adapter};
use resnet_wgpu::graph::params::SyntheticParams;
use resnet_wgpu::model::load_bytes;
use resnet_wgpu::model::npy::{read_npy, write_npy};
use resnet_wgpu::preprocess::{Preprocess, decode_image, load_image};
use resnet_wgpu::{ArchSpec, Error, Session, SessionOptions, Tensor};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------------------------------------
// Helpers: the CLI, temp files, safetensors and PNG files made by hand.

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"))
        // The fixed kernel table: reproducible outputs and no tuning per process (tests/tune.rs
        // and cli.rs's tuning test cover tuning).
        .env("RESNET_WGPU_TUNE", "off")
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("RUST_LOG")
        .output()
        .expect("cannot start resnet-wgpu")
}

/// `resnet-wgpu run --model MODEL --input INPUT --output OUTPUT`.
fn cli_run(model: &Path, input: &Path, output: &Path) -> Output {
    cli(&[
        "run",
        "--model",
        s(model),
        "--input",
        s(input),
        "--output",
        s(output),
    ])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_no_panic(o: &Output) {
    let err = stderr(o);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "panicked: {err}"
    );
}

/// Non-zero exit, no panic, exactly one `error:` line, which mentions every needle.
fn assert_fails_cleanly(o: &Output, needles: &[&str]) {
    assert!(
        !o.status.success(),
        "should have failed; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_no_panic(o);
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "want one error line, got: {err}");
    for n in needles {
        assert!(
            lines[0].contains(n),
            "{:?} does not mention {n:?}",
            lines[0]
        );
    }
}

fn tmp_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("resnet-wgpu-hostile-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The error of loading `bytes` as a safetensors file called `name`, as one line.
fn st_err(bytes: &[u8], name: &str) -> String {
    match load_bytes(bytes, name, None) {
        Ok(_) => panic!("{name}: loaded"),
        Err(e) => format!("{e:#}"),
    }
}

fn assert_mentions(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "{msg:?} does not mention {n:?}");
    }
}

/// A safetensors file from a header (as JSON) and a data section, with no checks at all.
fn raw_safetensors(header: &Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

/// One tensor of a safetensors file: name, dtype, shape, little-endian bytes.
struct St {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn f32_tensor(name: &str, shape: &[usize], values: &[f32]) -> St {
    St {
        name: name.into(),
        dtype: "F32".into(),
        shape: shape.to_vec(),
        bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// A well-formed safetensors file of `tensors` (in order) and string metadata.
fn safetensors(tensors: &[St], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        header.insert("__metadata__".into(), Value::Object(m));
    }
    let mut data = Vec::new();
    for t in tensors {
        let begin = data.len();
        data.extend_from_slice(&t.bytes);
        header.insert(
            t.name.clone(),
            json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [begin, data.len()]}),
        );
    }
    raw_safetensors(&Value::Object(header), &data)
}

/// The tensors of the ResNet-20 fixture, in file order.
fn resnet20_tensors() -> Vec<St> {
    let bytes = std::fs::read(local_fixture("resnet20/resnet20.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(usize, St)> = st
        .iter()
        .map(|(name, view)| {
            let offset = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
            (
                offset,
                St {
                    name: name.to_string(),
                    dtype: format!("{:?}", view.dtype()),
                    shape: view.shape().to_vec(),
                    bytes: view.data().to_vec(),
                },
            )
        })
        .collect();
    v.sort_by_key(|(o, _)| *o);
    v.into_iter().map(|(_, t)| t).collect()
}

/// A PNG chunk: length, type, data, CRC.
fn png_chunk(out: &mut Vec<u8>, ty: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(ty);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(ty);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A PNG file by hand (the encoders refuse 0-pixel and 100000-pixel images): IHDR, an optional
/// palette, `raw` (filtered scanlines) zlib-compressed into one IDAT, IEND.
fn png(
    width: u32,
    height: u32,
    depth: u8,
    color: u8,
    palette: Option<&[u8]>,
    raw: &[u8],
) -> Vec<u8> {
    use std::io::Write;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    if let Some(p) = palette {
        png_chunk(&mut out, b"PLTE", p);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(raw).unwrap();
    png_chunk(&mut out, b"IDAT", &z.finish().unwrap());
    png_chunk(&mut out, b"IEND", &[]);
    out
}

fn encode(img: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn decode_err(bytes: &[u8]) -> String {
    match decode_image(bytes) {
        Ok(img) => panic!("decoded a {}x{} image", img.width(), img.height()),
        Err(e) => format!("{e:#}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Model files (safetensors).

#[test]
fn safetensors_empty_file() {
    let e = st_err(b"", "empty.safetensors");
    assert_mentions(&e, &["empty.safetensors", "empty"]);
    let e = st_err(b"\x10\0\0", "short.safetensors");
    assert_mentions(&e, &["short.safetensors", "too short"]);
}

#[test]
fn safetensors_truncated_at_every_section_boundary() {
    let full = std::fs::read(local_fixture("resnet20/resnet20.safetensors")).unwrap();
    let n = u64::from_le_bytes(full[..8].try_into().unwrap()) as usize;
    let tensors = resnet20_tensors();
    // Inside and right after the length field, inside and right after the header, then right
    // after the first byte and at the end of every tensor but the last.
    let mut cuts = vec![0, 4, 7, 8, 9, 8 + n / 2, 8 + n - 1, 8 + n];
    let mut at = 8 + n;
    for t in &tensors[..tensors.len() - 1] {
        cuts.push(at + 1);
        at += t.bytes.len();
        cuts.push(at);
    }
    cuts.push(full.len() - 1);
    for cut in cuts {
        let e = st_err(&full[..cut], "cut.safetensors");
        assert!(e.starts_with("cut.safetensors: "), "cut at {cut}: {e}");
        let why = if cut == 0 {
            "empty"
        } else if cut < 8 {
            "too short"
        } else if cut < 8 + n {
            "header length field says"
        } else {
            "truncated"
        };
        assert!(e.contains(why), "cut at {cut}: {e}");
    }
}

#[test]
fn safetensors_header_length_larger_than_file() {
    for claimed in [64u64, 1 << 40, u64::MAX] {
        let mut bytes = claimed.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        let e = st_err(&bytes, "long.safetensors");
        assert_mentions(
            &e,
            &[
                "long.safetensors",
                &format!("says {claimed} bytes"),
                "only 2 bytes",
            ],
        );
    }
}

#[test]
fn safetensors_invalid_json_header() {
    for (header, why) in [
        (&b"{\"a\": "[..], "not a valid JSON object"),
        (b"[1, 2, 3]", "not a valid JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{\"w\": 3}", "tensor 'w'"),
        (
            b"{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}",
            "no 'data_offsets'",
        ),
    ] {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        let e = st_err(&bytes, "json.safetensors");
        assert_mentions(&e, &["json.safetensors", why]);
    }
    // 10000 nested arrays: serde_json's recursion limit, not a stack overflow.
    let deep = format!("{{\"w\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let mut bytes = (deep.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(deep.as_bytes());
    assert_mentions(&st_err(&bytes, "deep.safetensors"), &["deep.safetensors"]);
}

#[test]
fn safetensors_negative_overflowing_and_absurd_shapes() {
    let cases = [
        (json!([-1, 4]), 16, "negative dimension -1"),
        (json!([2.5]), 16, "not a non-negative integer"),
        (json!([1u64 << 32, 1u64 << 32, 1u64 << 32]), 16, "needs"),
        (json!([u64::MAX, 2]), 16, "needs"),
        // 2^40 elements claimed, 16 bytes held: refused from the header, nothing allocated.
        (
            json!([1 << 20, 1 << 20]),
            16,
            "(1099511627776 elements) needs 4398046511104 bytes",
        ),
        (
            json!([4]),
            12,
            "needs 16 bytes but its data_offsets [0, 12] hold 12",
        ),
    ];
    for (shape, len, why) in cases {
        let header =
            json!({"conv1.weight": {"dtype": "F32", "shape": shape, "data_offsets": [0, len]}});
        let e = st_err(
            &raw_safetensors(&header, &vec![0; len]),
            "shape.safetensors",
        );
        assert_mentions(&e, &["shape.safetensors", "conv1.weight", why]);
    }
}

#[test]
fn safetensors_offsets_overlapping_or_outside_the_data() {
    let t = |b: u64, e: u64| json!({"dtype": "F32", "shape": [(e.max(b) - b.min(e)) / 4], "data_offsets": [b, e]});
    let cases = [
        (
            json!({"a": t(0, 16), "b": t(8, 24)}),
            24,
            "tensors 'a' and 'b' overlap",
        ),
        (
            json!({"a": t(0, 16), "b": t(16, 48)}),
            32,
            "'b': data_offsets [16, 48] reach past the end of the 32-byte data section",
        ),
        (
            json!({"a": {"dtype": "F32", "shape": [0], "data_offsets": [16, 8]}}),
            16,
            "run backwards",
        ),
        (
            json!({"a": t(0, 8), "b": t(16, 24)}),
            24,
            "bytes 8..16 of the data section, before tensor 'b', belong to no tensor",
        ),
        (json!({"a": t(0, 8)}), 12, "4 trailing bytes"),
        (
            json!({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, -8]}}),
            8,
            "data_offsets must be two non-negative integers",
        ),
    ];
    for (header, len, why) in cases {
        let e = st_err(
            &raw_safetensors(&header, &vec![0; len]),
            "offsets.safetensors",
        );
        assert_mentions(&e, &["offsets.safetensors", why]);
    }
}

#[test]
fn safetensors_wrong_dtype() {
    let mut t = resnet20_tensors();
    let e = st_err(
        &safetensors(
            &[St {
                dtype: "Q4".into(),
                ..f32_tensor("fc.bias", &[4], &[0.0; 4])
            }],
            &[],
        ),
        "dtype.safetensors",
    );
    assert_mentions(&e, &["dtype.safetensors", "fc.bias", "unknown dtype 'Q4'"]);
    // A real dtype the engine does not take: I32 weights in an otherwise valid ResNet-20.
    let fc = t.iter_mut().find(|t| t.name == "fc.bias").unwrap();
    fc.dtype = "I32".into();
    let e = st_err(&safetensors(&t, &[]), "int.safetensors");
    assert_mentions(&e, &["int.safetensors", "fc.bias", "unsupported dtype I32"]);
    // F16 / BF16 / F64 weights load (converted to f32).
    for dtype in ["F16", "BF16", "F64"] {
        let mut t = resnet20_tensors();
        for x in t.iter_mut().filter(|x| x.dtype == "F32") {
            let v: Vec<f32> = x
                .bytes
                .chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            x.bytes = match dtype {
                "F16" => v
                    .iter()
                    .flat_map(|&f| half::f16::from_f32(f).to_le_bytes())
                    .collect(),
                "BF16" => v
                    .iter()
                    .flat_map(|&f| half::bf16::from_f32(f).to_le_bytes())
                    .collect(),
                _ => v.iter().flat_map(|&f| (f as f64).to_le_bytes()).collect(),
            };
            x.dtype = dtype.into();
        }
        let m = load_bytes(&safetensors(&t, &[]), "half.safetensors", None).unwrap();
        m.into_graph().unwrap();
    }
}

#[test]
fn safetensors_nan_and_inf_weights_are_refused_unless_allowed() {
    // Decision (issue 19): a NaN or infinite weight is legal in the format but makes every answer
    // NaN, so loading refuses it, naming the file and the tensor; `--allow-non-finite` loads it
    // anyway, with a warning, and the NaN reaches the output.
    let mut t = resnet20_tensors();
    let fc = t.iter_mut().find(|t| t.name == "fc.bias").unwrap();
    fc.bytes[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    fc.bytes[4..8].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let bytes = safetensors(&t, &[]);
    let e = st_err(&bytes, "nan.safetensors");
    assert_mentions(
        &e,
        &["nan.safetensors", "'fc.bias' holds 2 NaN or infinite"],
    );

    let dir = tmp_dir("nan");
    let model = write(&dir, "nan.safetensors", &bytes);
    let out = dir.join("out.npy");
    let input = local_fixture("resnet20/resnet20.input.npy");
    assert_fails_cleanly(
        &cli_run(&model, &input, &out),
        &["nan.safetensors", "fc.bias"],
    );
    assert!(!out.exists());
    let o = cli(&[
        "run",
        "--model",
        s(&model),
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--allow-non-finite",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.lines().any(|l| l.contains("WARN")
            && l.contains("nan.safetensors")
            && l.contains("'fc.bias' holds 2 NaN or infinite")),
        "no warning: {err}"
    );
    let logits = read_npy(&std::fs::read(&out).unwrap(), "out").unwrap();
    assert!(
        logits
            .data
            .chunks(10)
            .all(|row| row[0].is_nan() && row[1].is_infinite())
    );
}

#[test]
fn safetensors_missing_and_extra_tensors() {
    let t: Vec<St> = resnet20_tensors()
        .into_iter()
        .filter(|t| t.name != "layer2.1.bn1.running_var")
        .collect();
    let m = load_bytes(&safetensors(&t, &[]), "missing.safetensors", None).unwrap();
    let e = format!("{:#}", m.into_graph().unwrap_err());
    assert_mentions(
        &e,
        &[
            "missing.safetensors",
            "missing tensor 'layer2.1.bn1.running_var'",
            "expected shape [32]",
        ],
    );

    let mut t = resnet20_tensors();
    t.push(f32_tensor("decoder.weight", &[2], &[1.0, 2.0]));
    let m = load_bytes(&safetensors(&t, &[]), "extra.safetensors", None).unwrap();
    let e = format!("{:#}", m.into_graph().unwrap_err());
    assert_mentions(
        &e,
        &[
            "extra.safetensors",
            "1 tensor(s) are not part of",
            "decoder.weight",
        ],
    );

    // No tensors at all: nothing to infer an architecture from.
    let e = st_err(&safetensors(&[], &[]), "none.safetensors");
    assert_mentions(&e, &["none.safetensors", "cannot tell the architecture"]);
}

#[test]
fn safetensors_shapes_that_do_not_chain() {
    // fc with 32 in-features after a 64-channel last stage.
    let mut t = resnet20_tensors();
    let fc = t.iter_mut().find(|t| t.name == "fc.weight").unwrap();
    *fc = f32_tensor("fc.weight", &[10, 32], &[0.0; 320]);
    let m = load_bytes(&safetensors(&t, &[]), "chain.safetensors", None).unwrap();
    let e = format!("{:#}", m.into_graph().unwrap_err());
    assert_mentions(
        &e,
        &[
            "chain.safetensors",
            "fc.weight",
            "[10, 32]",
            "expected [10, 64]",
        ],
    );
    // A middle conv with the wrong input channels.
    let mut t = resnet20_tensors();
    let c = t
        .iter_mut()
        .find(|t| t.name == "layer2.1.conv1.weight")
        .unwrap();
    *c = f32_tensor(
        "layer2.1.conv1.weight",
        &[32, 16, 3, 3],
        &vec![0.0; 32 * 16 * 9],
    );
    let m = load_bytes(&safetensors(&t, &[]), "chain2.safetensors", None).unwrap();
    let e = format!("{:#}", m.into_graph().unwrap_err());
    assert_mentions(
        &e,
        &[
            "chain2.safetensors",
            "layer2.1.conv1.weight",
            "expected [32, 32, 3, 3]",
        ],
    );
}

#[test]
fn safetensors_unsupported_architecture() {
    let t = resnet20_tensors();
    let e = st_err(
        &safetensors(&t, &[("arch", "densenet121")]),
        "dense.safetensors",
    );
    assert_mentions(&e, &["dense.safetensors", "densenet121"]);
    let e = st_err(
        &safetensors(&t, &[("arch", "resnet20"), ("shortcut", "Z")]),
        "sc.safetensors",
    );
    assert_mentions(&e, &["sc.safetensors", "unknown shortcut option 'Z'"]);
    // CLI: --arch that does not exist, and one that exists but does not match the weights.
    let dir = tmp_dir("arch");
    let model = local_fixture("resnet20/resnet20.safetensors");
    let input = local_fixture("resnet20/resnet20.input.npy");
    let out = dir.join("o.npy");
    for (arch, needle) in [("vgg16", "vgg16"), ("resnet32", "layer1.3")] {
        let o = cli(&[
            "run",
            "--model",
            s(&model),
            "--arch",
            arch,
            "--input",
            s(&input),
            "--output",
            s(&out),
        ]);
        assert_fails_cleanly(&o, &["resnet20.safetensors", needle]);
    }
}

#[test]
fn onnx_garbage_and_truncation_via_cli() {
    // The ONNX loader's own error cases (bad protobuf, cycles, unsupported ops, bad initializers)
    // are in tests/onnx.rs; here, that the CLI reports them as one line naming the file.
    let dir = tmp_dir("onnx");
    let full = std::fs::read(local_fixture("resnet20/resnet20.onnx")).unwrap();
    let input = local_fixture("resnet20/resnet20.input.npy");
    let out = dir.join("o.npy");
    for (name, bytes) in [
        (
            "garbage.onnx",
            &b"\x08\x07 certainly not protobuf \xff\xff\xff"[..],
        ),
        ("half.onnx", &full[..full.len() / 2]),
        ("empty.onnx", &[][..]),
    ] {
        let model = write(&dir, name, bytes);
        let o = cli_run(&model, &input, &out);
        assert_fails_cleanly(&o, &[name]);
    }
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------------
// Input tensors (.npy).

fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

fn npy_err(bytes: &[u8]) -> String {
    match read_npy(bytes, "x.npy") {
        Ok(t) => panic!("read a tensor of shape {:?}", t.shape),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn npy_bad_headers_dtypes_and_claimed_sizes() {
    let ok = npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        &[0; 8],
    );
    assert_eq!(read_npy(&ok, "ok.npy").unwrap().shape, vec![2]);
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    v2.extend_from_slice(&u32::MAX.to_le_bytes());
    let nested = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}1{}, }}",
        "(".repeat(5000),
        ",)".repeat(5000)
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "empty"),
        (b"P5 28 28 255".to_vec(), "magic"),
        (b"\x93NUMPY\x01".to_vec(), "truncated"),
        (b"\x93NUMPY\x09\x00\x10\x00".to_vec(), "version 9.0"),
        (ok[..40].to_vec(), "only 30 follow"),
        // A 4 GiB header claimed by a 12-byte file: refused, not allocated.
        (v2, "more than the 65536 allowed"),
        (npy_with_header(&nested, &[]), "nests brackets"),
        // Unclosed brackets made npyz's parser backtrack exponentially (fuzzing: 12 took 29 s).
        (
            npy_with_header("{'descr': '<f4', 'fortran_order': False, {{{{{{{{{{{", &[]),
            "nests brackets",
        ),
        (
            npy_with_header(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ",
                &[0; 8],
            ),
            "x.npy",
        ),
        (
            npy_with_header(
                "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                &[0; 8],
            ),
            "dtype <i4 is not supported",
        ),
        (
            npy_with_header(
                "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                &[0; 8],
            ),
            "dtype >f4 is not supported",
        ),
        (
            npy_with_header(
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                &[0; 8],
            ),
            "structured",
        ),
        (
            npy_with_header(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }",
                &[0; 8],
            ),
            "x.npy",
        ),
        // 7.5e9 values claimed, none held: refused from the header.
        (
            npy_with_header(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 50000, 50000), }",
                &[],
            ),
            "(7500000000 values of <f4, 30000000000 bytes) but only 0 bytes",
        ),
        (
            npy_with_header(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }",
                &[],
            ),
            "too many elements",
        ),
        (
            npy_with_header(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                &[0; 8],
            ),
            "only 8 bytes",
        ),
    ];
    for (bytes, why) in cases {
        let e = npy_err(&bytes);
        assert_mentions(&e, &["x.npy: ", why]);
    }
}

#[test]
fn npy_wrong_shape_and_dtype_via_cli() {
    let dir = tmp_dir("npy");
    let model = local_fixture("resnet20/resnet20.safetensors");
    let out = dir.join("o.npy");
    let gray = write(
        &dir,
        "gray.npy",
        &write_npy(&Tensor::zeros(vec![1, 1, 32, 32])).unwrap(),
    );
    let ints = write(
        &dir,
        "ints.npy",
        &npy_with_header(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 3, 32, 32), }",
            &[0; 3 * 32 * 32 * 8],
        ),
    );
    let huge = write(
        &dir,
        "huge.npy",
        &npy_with_header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (64, 3, 4096, 4096), }",
            &[],
        ),
    );
    let zero = write(
        &dir,
        "zero.npy",
        &write_npy(&Tensor::zeros(vec![1, 3, 0, 32])).unwrap(),
    );
    for (input, needles) in [
        (&gray, &["gray.npy", "conv1.weight", "1x32x32"][..]),
        (&ints, &["ints.npy", "<i8"]),
        (&huge, &["huge.npy", "only 0 bytes"]),
        (&zero, &["zero.npy", "the images are empty"]),
    ] {
        let o = cli_run(&model, input, &out);
        assert_fails_cleanly(&o, needles);
    }
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------------
// Images.

#[test]
fn non_image_files_are_refused() {
    assert_mentions(&decode_err(b""), &["not an image"]);
    assert_mentions(
        &decode_err(b"just some text, not a picture"),
        &["not an image"],
    );
    let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
    fake.extend_from_slice(&[0xAB; 100]);
    assert_mentions(&decode_err(&fake), &["not a valid image"]);
    let dir = tmp_dir("nonimage");
    let p = write(&dir, "notes.jpg", b"shopping list");
    let e = format!("{:#}", load_image(&p).unwrap_err());
    assert_mentions(&e, &["notes.jpg", "not an image"]);
    let e = format!("{:#}", load_image(&dir.join("absent.png")).unwrap_err());
    assert_mentions(&e, &["absent.png", "cannot read"]);
}

#[test]
fn images_of_zero_and_one_pixel() {
    for (w, h) in [(0, 1), (1, 0), (0, 0)] {
        let e = decode_err(&png(w, h, 8, 0, None, &[]));
        assert!(!e.is_empty());
    }
    // One pixel decodes and fills every preprocessing recipe with its colour.
    let one = png(1, 1, 8, 2, None, &[0, 255, 0, 0]);
    let img = decode_image(&one).unwrap();
    for pre in [
        Preprocess::imagenet(),
        Preprocess {
            gray: true,
            resize_shorter: None,
            size: [28, 28],
            pad: 2,
            mean: [0.0; 3],
            std: [1.0; 3],
        },
    ] {
        let out = pre.apply(&img);
        let [c, h, w] = pre.output_shape();
        assert_eq!(out.len(), c * h * w);
        assert!(out.iter().all(|v| v.is_finite()));
        if !pre.gray {
            let red = (1.0 - pre.mean[0]) / pre.std[0];
            assert!(out[..h * w].iter().all(|&v| (v - red).abs() < 1e-5));
        }
    }
}

#[test]
fn decompression_bombs_are_refused_before_allocating() {
    // 100000 x 100000 gray claimed by a 100-byte file (10 GB if decoded).
    let bomb = png(100_000, 100_000, 8, 0, None, &[0; 1024]);
    assert!(bomb.len() < 200);
    assert_mentions(&decode_err(&bomb), &["limit"]);
    // Within the side limit but 1 GiB of RGBA: over the allocation limit.
    let bomb = png(16384, 16384, 8, 6, None, &[0; 1024]);
    assert_mentions(&decode_err(&bomb), &["limit"]);
    // A thin image that the ImageNet recipe would scale up to 256 x 4194304 (3 GB) before
    // cropping: preprocessing crops first.
    let thin = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(16384, 1, |x, _| {
        image::Luma([(x % 256) as u8])
    }));
    let img = decode_image(&encode(&thin, image::ImageFormat::Png)).unwrap();
    let started = std::time::Instant::now();
    let out = Preprocess::imagenet().apply(&img);
    assert_eq!(out.len(), 3 * 224 * 224);
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
}

/// A baseline JPEG with four components and Adobe's "no transform" marker (CMYK, as Photoshop
/// writes it), made by hand since the image crate's encoder has no CMYK: 16x16 pixels, four 8x8
/// MCUs, each a flat colour (only DC coefficients) given per component in `mcus`.
fn cmyk_jpeg(mcus: [[u8; 4]; 4]) -> Vec<u8> {
    fn segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut out = vec![0xFF, 0xD8];
    segment(&mut out, 0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00");
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[1; 64]);
    segment(&mut out, 0xDB, &dqt);
    let mut sof = vec![8, 0, 16, 0, 16, 4];
    for id in 1..=4 {
        sof.extend_from_slice(&[id, 0x11, 0]);
    }
    segment(&mut out, 0xC0, &sof);
    // DC table: categories 0..=11, all with 4-bit codes (0000 .. 1011). AC table: only EOB, "0".
    let mut dht = vec![0x00, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    dht.extend(0..12u8);
    dht.extend_from_slice(&[0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]);
    segment(&mut out, 0xC4, &dht);
    let mut sos = vec![4];
    for id in 1..=4 {
        sos.extend_from_slice(&[id, 0x00]);
    }
    sos.extend_from_slice(&[0, 63, 0]);
    segment(&mut out, 0xDA, &sos);
    let mut bits: Vec<bool> = Vec::new();
    let put = |v: u32, n: u32, bits: &mut Vec<bool>| {
        for i in (0..n).rev() {
            bits.push((v >> i) & 1 == 1);
        }
    };
    let mut pred = [0i32; 4];
    for mcu in mcus {
        for (c, &v) in mcu.iter().enumerate() {
            // Flat block of value v: DC = 8 * (v - 128) with quantiser 1.
            let dc = 8 * (v as i32 - 128);
            let diff = dc - pred[c];
            pred[c] = dc;
            let cat = 32 - diff.unsigned_abs().leading_zeros();
            put(cat, 4, &mut bits);
            let extra = if diff >= 0 {
                diff
            } else {
                diff + (1 << cat) - 1
            };
            put(extra as u32, cat, &mut bits);
            put(0, 1, &mut bits); // EOB
        }
    }
    while !bits.len().is_multiple_of(8) {
        bits.push(true);
    }
    for byte in bits.chunks(8) {
        let b = byte.iter().fold(0u8, |a, &x| (a << 1) | x as u8);
        out.push(b);
        if b == 0xFF {
            out.push(0x00);
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[test]
fn sixteen_bit_gray_palette_and_cmyk_images_decode() {
    let imagenet = Preprocess::imagenet();
    let check = |bytes: &[u8], what: &str| -> image::DynamicImage {
        let img = decode_image(bytes).unwrap_or_else(|e| panic!("{what}: {e:#}"));
        let out = imagenet.apply(&img);
        assert_eq!(out.len(), 3 * 224 * 224, "{what}");
        assert!(out.iter().all(|v| v.is_finite()), "{what}");
        img
    };
    // 16-bit RGB: the top bits must survive (pure red stays pure red).
    let rgb16 = image::ImageBuffer::from_fn(8, 8, |_, _| image::Rgb([65535u16, 0, 0]));
    let img = check(
        &encode(
            &image::DynamicImage::ImageRgb16(rgb16),
            image::ImageFormat::Png,
        ),
        "16-bit RGB",
    );
    assert_eq!(img.to_rgb8().get_pixel(3, 3).0, [255, 0, 0]);
    // 16-bit gray, 8-bit gray (PNG and JPEG), gray + alpha.
    let g16 = image::ImageBuffer::from_fn(8, 8, |x, _| image::Luma([x as u16 * 8000]));
    check(
        &encode(
            &image::DynamicImage::ImageLuma16(g16),
            image::ImageFormat::Png,
        ),
        "16-bit gray",
    );
    let g8 = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(8, 8, |x, y| {
        image::Luma([(x * y) as u8])
    }));
    check(&encode(&g8, image::ImageFormat::Png), "gray PNG");
    check(&encode(&g8, image::ImageFormat::Jpeg), "gray JPEG");
    check(
        &encode(&g8.to_luma_alpha8().into(), image::ImageFormat::Png),
        "gray+alpha PNG",
    );
    // Palette PNG (by hand: the image crate writes no palettes): 2x2, indices 0 1 / 2 0.
    let palette = [255, 0, 0, 0, 255, 0, 0, 0, 255];
    let img = check(
        &png(2, 2, 8, 3, Some(&palette), &[0, 0, 1, 0, 2, 0]),
        "palette PNG",
    );
    let rgb = img.to_rgb8();
    assert_eq!(rgb.get_pixel(1, 0).0, [0, 255, 0]);
    assert_eq!(rgb.get_pixel(0, 1).0, [0, 0, 255]);
    // A palette index past the palette's end is an error, not a read out of bounds.
    let _ = decode_image(&png(2, 2, 8, 3, Some(&palette), &[0, 7, 7, 0, 7, 7]));
    // CMYK JPEG, stored inverted as Adobe's are (255 = no ink): four flat quadrants, full ink
    // (black), no ink (white), a mid gray, and pure cyan.
    let jpeg = cmyk_jpeg([
        [0, 0, 0, 0],
        [255, 255, 255, 255],
        [128, 128, 128, 255],
        [0, 255, 255, 255],
    ]);
    let img = check(&jpeg, "CMYK JPEG");
    assert_eq!((img.width(), img.height()), (16, 16));
    let rgb = img.to_rgb8();
    let [black, white, gray, cyan] =
        [(0, 0), (8, 0), (0, 8), (8, 8)].map(|(x, y)| rgb.get_pixel(x + 3, y + 3).0);
    assert!(black.iter().all(|&v| v < 8), "full ink: {black:?}");
    assert!(white.iter().all(|&v| v > 247), "no ink: {white:?}");
    assert!(
        gray.iter().all(|&v| v.abs_diff(128) < 16) && gray[0].abs_diff(gray[2]) < 4,
        "C=M=Y half ink: {gray:?}"
    );
    assert!(
        cyan[0] < 8 && cyan[1] > 247 && cyan[2] > 247,
        "pure cyan: {cyan:?}"
    );
}

#[test]
fn directory_of_mixed_good_and_bad_images() {
    let dir = tmp_dir("mixed");
    let good = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([((x + y) * 4) as u8])
    }));
    write(&dir, "a_good.png", &encode(&good, image::ImageFormat::Png));
    write(&dir, "b_one_pixel.png", &png(1, 1, 8, 0, None, &[0, 200]));
    write(&dir, "c_notes.txt", b"not an image");
    let full = encode(&good, image::ImageFormat::Png);
    write(&dir, "d_truncated.png", &full[..full.len() / 2]);
    write(&dir, "e_zero.png", &png(0, 0, 8, 0, None, &[]));
    write(
        &dir,
        "f_bomb.png",
        &png(100_000, 100_000, 8, 0, None, &[0; 64]),
    );
    write(&dir, "g_good.jpg", &encode(&good, image::ImageFormat::Jpeg));
    let o = cli(&["classify", "--json", s(&dir)]);
    assert_no_panic(&o);
    assert!(!o.status.success(), "must fail when some images are bad");
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
    let classified: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["image"].as_str().unwrap())
        .collect();
    assert_eq!(classified.len(), 3, "{classified:?}");
    for name in ["a_good.png", "b_one_pixel.png", "g_good.jpg"] {
        assert!(
            classified.iter().any(|c| c.ends_with(name)),
            "{name} not classified"
        );
    }
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        lines.len(),
        5,
        "one line per bad image plus a summary: {err}"
    );
    for (name, why) in [
        ("c_notes.txt", "not an image"),
        ("d_truncated.png", "image"),
        ("e_zero.png", "image"),
        ("f_bomb.png", "limit"),
    ] {
        assert!(
            lines.iter().any(|l| l.contains(name) && l.contains(why)),
            "{name}: {err}"
        );
    }
    assert!(
        lines[4].contains("4 of 7 images could not be read"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// The GPU side.

fn resnet20_graph(input: [usize; 3]) -> resnet_wgpu::graph::Graph {
    ArchSpec::parse("resnet20")
        .unwrap()
        .build(&mut SyntheticParams::new(7, 10), input)
        .unwrap()
}

fn random_input(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = resnet_wgpu::tensor::SplitMix64(seed);
    (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect()
}

#[test]
fn no_adapter_is_one_clear_line() {
    let dir = tmp_dir("noadapter");
    let model = local_fixture("resnet20/resnet20.safetensors");
    let input = local_fixture("resnet20/resnet20.input.npy");
    let out = dir.join("o.npy");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--output",
            s(&out),
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    assert_fails_cleanly(
        &run(&["--adapter", "no-such-gpu"]),
        &["no adapter matches 'no-such-gpu'", "available:"],
    );
    let backend = if cfg!(target_os = "linux") {
        "dx12"
    } else {
        "gl"
    };
    assert_fails_cleanly(
        &run(&["--backend", backend]),
        &["no adapter on backend", backend],
    );
    assert_fails_cleanly(&run(&["--backend", "glide"]), &["unknown backend 'glide'"]);
    assert!(!out.exists());
}

#[test]
fn limits_too_small_for_a_layer_name_the_layer_and_the_limit() {
    let adapter = pollster::block_on(select_adapter(&GpuOptions::default())).unwrap();
    // WebGPU's default limits (128 MiB a binding), one 2048x2048 image: the stem's output is
    // 16 x 2048 x 2048 floats = 256 MiB.
    let ctx = pollster::block_on(GpuContext::from_adapter(&adapter, true)).unwrap();
    let graph = resnet20_graph([3, 2048, 2048]);
    let err = Session::new(ctx, graph.clone(), &SessionOptions::default())
        .err()
        .unwrap();
    let e = err.to_string();
    // Callers tell the kind of error from its variant, people from its message.
    assert!(
        matches!(
            &err,
            Error::AdapterLimit { layer, limit: "max_storage_buffer_binding_size", need: 268435456, allowed: 134217728, .. }
                if layer == "conv1"
        ),
        "{err:?}"
    );
    assert_mentions(
        &e,
        &[
            "layer 'conv1",
            "268435456 bytes",
            "allows 134217728 bytes per storage binding",
        ],
    );
    // A 64 KiB binding: activations fit one image, but layer3's 3x3 conv weights (144 KiB) do not.
    let mut limits = adapter.limits();
    limits.max_storage_buffer_binding_size = 64 << 10;
    let ctx = pollster::block_on(GpuContext::with_limits(&adapter, limits)).unwrap();
    let err = Session::new(ctx, resnet20_graph([3, 32, 32]), &SessionOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(&err, Error::AdapterLimit { layer, allowed: 65536, .. } if layer == "layer3.0.conv1"),
        "{err:?}"
    );
    let e = err.to_string();
    assert_mentions(
        &e,
        &[
            "layer 'layer3.0.conv1",
            "bytes of weights exceed",
            "65536 bytes",
        ],
    );
}

#[test]
fn a_batch_too_large_for_one_binding_runs_in_chunks() {
    let adapter = pollster::block_on(select_adapter(&GpuOptions::default())).unwrap();
    let mut limits = adapter.limits();
    // 256 KiB a binding: four 16x32x32 activations (64 KiB each) at a time.
    limits.max_storage_buffer_binding_size = 256 << 10;
    let small = pollster::block_on(GpuContext::with_limits(&adapter, limits)).unwrap();
    let graph = resnet20_graph([3, 32, 32]);
    let images = 10;
    let input = random_input(images * 3 * 32 * 32, 11);
    let opts = SessionOptions {
        batch: images,
        ..Default::default()
    };
    let split = Session::new(small, graph.clone(), &opts).unwrap();
    assert_eq!(split.batch, 4, "should run in chunks of 4");
    let whole = Session::new(gpu(), graph.clone(), &opts).unwrap();
    assert_eq!(whole.batch, images);
    let a = split.run(&input).unwrap().logits;
    let b = whole.run(&input).unwrap().logits;
    assert_eq!(a.len(), images * 10);
    check_close(&a, &b, 1e-5, 1e-5).unwrap();
}

#[test]
fn device_lost_is_a_clear_error_and_the_session_can_be_rebuilt() {
    let ctx = GpuContext::new_blocking(&GpuOptions::default()).unwrap();
    let graph = resnet20_graph([3, 32, 32]);
    let input = random_input(2 * 3 * 32 * 32, 5);
    let opts = SessionOptions {
        batch: 2,
        ..Default::default()
    };
    let session = Session::new(ctx.clone(), graph.clone(), &opts).unwrap();
    let before = session.run(&input).unwrap().logits;
    ctx.device.destroy();
    let err = session.run(&input).unwrap_err();
    assert!(matches!(err, Error::DeviceLost { .. }), "{err:?}");
    let e = err.to_string();
    assert_mentions(
        &e,
        &[
            "was lost",
            "Destroyed",
            "create a new GpuContext and Session",
        ],
    );
    assert!(ctx.lost().is_some());
    // Planning on the lost device says the same, rather than building on a dead device.
    let err = Session::new(ctx.clone(), graph.clone(), &opts)
        .err()
        .unwrap();
    assert!(matches!(err, Error::DeviceLost { .. }), "{err:?}");
    assert_mentions(&err.to_string(), &["was lost"]);
    // A new context and session carry on, with the same results.
    let fresh = GpuContext::new_blocking(&GpuOptions::default()).unwrap();
    let again = Session::new(fresh, graph.clone(), &opts)
        .unwrap()
        .run(&input)
        .unwrap()
        .logits;
    assert_eq!(before, again);
}

// ---------------------------------------------------------------------------------------------
// Output files.

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

#[test]
fn failed_runs_leave_no_output_and_no_temp_file() {
    let dir = tmp_dir("atomic");
    let model = local_fixture("resnet20/resnet20.safetensors");
    let input = local_fixture("resnet20/resnet20.input.npy");
    let bad = write(&dir, "bad.npy", b"\x93NUMPY garbage");
    // A failing run with no previous output: nothing appears.
    let out = dir.join("logits.npy");
    let o = cli_run(&model, &bad, &out);
    assert_fails_cleanly(&o, &["bad.npy"]);
    assert!(!out.exists());
    // An existing output is untouched by a failing run (bad model, bad input, no adapter).
    std::fs::write(&out, b"previous results").unwrap();
    let broken = write(
        &dir,
        "broken.safetensors",
        &std::fs::read(&model).unwrap()[..5000],
    );
    for args in [
        vec!["--model", s(&broken), "--input", s(&input)],
        vec!["--model", s(&model), "--input", s(&bad)],
        vec![
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--adapter",
            "no-such-gpu",
        ],
    ] {
        let mut all = vec!["run", "--output", s(&out)];
        all.extend(args);
        assert!(!cli(&all).status.success());
        assert_eq!(std::fs::read(&out).unwrap(), b"previous results");
    }
    // The output path is a folder: the rename fails, and the temporary file is removed.
    let folder = dir.join("folder.npy");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("inside"), b"x").unwrap();
    let o = cli_run(&model, &input, &folder);
    assert_fails_cleanly(&o, &["folder.npy", "cannot write"]);
    assert!(
        leftovers(&dir).is_empty(),
        "temp files left: {:?}",
        leftovers(&dir)
    );
    // A good run replaces the file, leaving no temporary file either.
    let o = cli_run(&model, &input, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        read_npy(&std::fs::read(&out).unwrap(), "out")
            .unwrap()
            .shape,
        vec![2, 10]
    );
    assert!(leftovers(&dir).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Fuzzing regressions: every input a fuzz target (fuzz/) crashed on is kept under
// tests/fixtures/fuzz/<target>/ and must now be refused (or accepted) without a panic. The
// committed seeds go through the same code.

/// What each fuzz target does with its bytes; `Err` or `Ok`, never a panic.
fn fuzz_one(target: &str, bytes: &[u8]) -> Result<(), String> {
    let run = match target {
        "safetensors" => fuzzing::safetensors,
        "onnx" => fuzzing::onnx,
        "npy" => fuzzing::npy,
        "image" => fuzzing::image,
        _ => unreachable!(),
    };
    run(bytes).map_err(|e| format!("{e:#}"))
}

/// Every input a fuzz target has: the crash and slow-input regressions (tests/fixtures/fuzz), the
/// seeds, and the minimized corpus the fuzzer reached (fuzz/corpus-min/TARGET.zip).
fn fuzz_inputs(target: &str) -> Vec<(String, Vec<u8>, bool)> {
    let mut inputs = Vec::new();
    let regressions = common::root().join("tests/fixtures/fuzz").join(target);
    // Only these targets found anything to keep; a missing folder means lost regressions.
    if matches!(target, "npy" | "image") {
        assert!(regressions.is_dir(), "missing {}", regressions.display());
    }
    let seeds = common::root().join("fuzz/seeds").join(target);
    assert!(seeds.is_dir(), "missing {}", seeds.display());
    for dir in [regressions, seeds] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let is_seed = dir.ends_with(format!("seeds/{target}"));
        for entry in entries {
            let path = entry.unwrap().path();
            inputs.push((
                path.display().to_string(),
                std::fs::read(&path).unwrap(),
                is_seed,
            ));
        }
    }
    let zip_path = common::root().join(format!("fuzz/corpus-min/{target}.zip"));
    let file =
        std::fs::File::open(&zip_path).unwrap_or_else(|e| panic!("{}: {e}", zip_path.display()));
    let mut zip = zip::ZipArchive::new(file).unwrap();
    assert!(
        zip.len() > 100,
        "{}: only {} inputs",
        zip_path.display(),
        zip.len()
    );
    for k in 0..zip.len() {
        let mut entry = zip.by_index(k).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        inputs.push((
            format!("{}:{}", zip_path.display(), entry.name()),
            bytes,
            false,
        ));
    }
    inputs
}

#[test]
fn fuzz_regressions_seeds_and_corpus_never_panic() {
    for target in ["safetensors", "onnx", "npy", "image"] {
        let inputs = fuzz_inputs(target);
        let mut refused = 0;
        for (name, bytes, is_seed) in &inputs {
            let started = std::time::Instant::now();
            let result = std::panic::catch_unwind(|| fuzz_one(target, bytes));
            let took = started.elapsed();
            assert!(took.as_secs_f32() < 5.0, "{name} took {took:?}");
            // The ONNX seeds are valid models (so the fuzzer starts inside the importer).
            if *is_seed && target == "onnx" {
                assert!(matches!(result, Ok(Ok(()))), "{name}: {result:?}");
            }
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    refused += 1;
                    // Loader errors name the file they read.
                    assert!(e.starts_with("fuzz.") || target == "image", "{name}: {e}");
                }
                Err(_) => panic!("{target} panicked on {name}"),
            }
        }
        eprintln!(
            "{target}: {} inputs, {refused} refused with an error, none panicked",
            inputs.len()
        );
    }
}
