//! Never a confident wrong answer (issue 19): non-finite weights and bad metadata refused at load,
//! results that are not numbers never ranked, outputs that are not class scores refused, final
//! Softmax detected, output files written through links, FIFOs and devices, `-` for standard
//! input and output, folders streamed with bounded memory, absurd depths refused, truncated JPEGs
//! refused, and one clear line for each of the messages the issue lists.

mod common;

use common::local_fixture;
use resnet_wgpu::model::npy::read_npy;
use resnet_wgpu::model::onnx::Message;
use resnet_wgpu::model::onnx::proto::{ModelProto, NodeProto};
use resnet_wgpu::model::{LoadOptions, Network, load_bytes, load_bytes_with};
use resnet_wgpu::preprocess::decode_image;
use resnet_wgpu::{ArchSpec, Tensor, model};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

// ---------------------------------------------------------------------------------------------
// Helpers.

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"));
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir())
        // The fixed kernel table: reproducible outputs and no tuning per process.
        .env("RESNET_WGPU_TUNE", "off")
        .env_remove("RUST_LOG")
        .env_remove("WGPU_BACKEND");
    c
}

fn cli(args: &[&str]) -> Output {
    bin().args(args).output().expect("cannot start resnet-wgpu")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Non-zero exit, no panic, exactly one `error:` line, which mentions every needle.
fn assert_fails_cleanly(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "should have failed; stdout: {}",
        stdout(o)
    );
    assert!(!err.contains("panicked"), "panicked: {err}");
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

fn assert_mentions(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "{msg:?} does not mention {n:?}");
    }
}

fn tmp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "resnet-wgpu-reliability-{}-{tag}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn load_err(bytes: &[u8], name: &str) -> String {
    match load_bytes(bytes, name, None) {
        Ok(_) => panic!("{name}: loaded"),
        Err(e) => format!("{e:#}"),
    }
}

/// The ResNet-20 fixture's weights, by name.
fn resnet20_weights() -> HashMap<String, Tensor> {
    let m = model::load_file(&local_fixture("resnet20/resnet20.safetensors"), None).unwrap();
    match m.network {
        Network::Arch { weights, .. } => weights,
        Network::Graph(_) => unreachable!(),
    }
}

/// A safetensors file (float32) of `weights` with string metadata.
fn safetensors_file(weights: &HashMap<String, Tensor>, metadata: &[(&str, &str)]) -> Vec<u8> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights
        .iter()
        .map(|(k, t)| {
            let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (k.clone(), t.shape.clone(), b)
        })
        .collect();
    let views: Vec<_> = bytes
        .iter()
        .map(|(k, shape, b)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                .unwrap();
            (k.clone(), v)
        })
        .collect();
    let md = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
    safetensors::tensor::serialize(views, md).unwrap()
}

/// A 32x32 RGB PNG (the ResNet-20 fixture's input size), a different pattern per `seed`.
fn png(seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([
            (x * 8 + seed * 17) as u8,
            (y * 8 + seed * 5) as u8,
            ((x + y) * 4 + seed * 29) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn resnet20_onnx() -> ModelProto {
    let bytes = std::fs::read(local_fixture("resnet20/resnet20.onnx")).unwrap();
    ModelProto::decode(&bytes[..]).unwrap()
}

/// Runs `classify --json` and returns (output, parsed stdout).
fn classify_json(args: &[&str]) -> (Output, Value) {
    let mut all = vec!["classify", "--json"];
    all.extend_from_slice(args);
    let o = cli(&all);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{}", stdout(&o), stderr(&o)));
    (o, v)
}

// ---------------------------------------------------------------------------------------------
// Item 2: NaN and infinity, negative variances, metadata.

#[test]
fn non_finite_weights_are_refused_naming_file_and_tensor_unless_allowed() {
    let mut w = resnet20_weights();
    w.get_mut("layer2.0.conv1.weight").unwrap().data[5] = f32::NAN;
    w.get_mut("fc.bias").unwrap().data[1] = f32::INFINITY;
    let bytes = safetensors_file(&w, &[]);
    let e = load_err(&bytes, "nan.safetensors");
    assert_mentions(
        &e,
        &[
            "nan.safetensors",
            "'fc.bias'",
            "NaN or infinite",
            "--allow-non-finite",
        ],
    );
    // The explicit override loads it.
    let opts = LoadOptions {
        allow_non_finite: true,
    };
    load_bytes_with(&bytes, "nan.safetensors", None, &opts)
        .unwrap()
        .into_graph()
        .unwrap();
    // The command line: refused with one line; with --allow-non-finite it runs, and the NaN
    // weight reaches every logit (non-finite values are not filtered out: ReLU and max pool keep
    // NaN, and the global average pool spreads it over every channel).
    let dir = tmp_dir("nan");
    let model = dir.join("nan.safetensors");
    std::fs::write(&model, &bytes).unwrap();
    let input = local_fixture("resnet20/resnet20.input.npy");
    let out = dir.join("out.npy");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "run",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--output",
            s(&out),
        ];
        a.extend_from_slice(extra);
        cli(&a)
    };
    assert_fails_cleanly(
        &run(&[]),
        &["nan.safetensors", "fc.bias", "--allow-non-finite"],
    );
    assert!(!out.exists());
    let o = run(&["--allow-non-finite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let logits = read_npy(&std::fs::read(&out).unwrap(), "out").unwrap();
    assert!(logits.data.iter().all(|v| v.is_nan()), "{:?}", logits.data);
}

#[test]
fn negative_batch_norm_variance_is_refused() {
    let mut w = resnet20_weights();
    w.get_mut("layer3.1.bn2.running_var").unwrap().data[7] = -0.25;
    let e = load_err(&safetensors_file(&w, &[]), "negvar.safetensors");
    assert_mentions(
        &e,
        &[
            "negvar.safetensors",
            "'layer3.1.bn2.running_var'",
            "negative",
            "-0.25",
        ],
    );
}

#[test]
fn non_finite_onnx_initializers_are_refused() {
    let mut m = resnet20_onnx();
    let g = m.graph.as_mut().unwrap();
    let t = g
        .initializer
        .iter_mut()
        .find(|t| t.dims.len() == 4)
        .expect("a conv weight");
    let raw = t.raw_data.as_mut().expect("raw data");
    raw[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let e = load_err(&m.encode_to_vec(), "nan.onnx");
    assert_mentions(&e, &["nan.onnx", "NaN or infinite", "--allow-non-finite"]);
}

#[test]
fn metadata_that_is_not_finite_positive_or_consistent_is_refused() {
    let w = resnet20_weights();
    for (key, value, needles) in [
        ("mean", "NaN", &["'mean'", "finite"][..]),
        ("mean", "[0.5, inf, 0.5]", &["'mean'"][..]),
        ("std", "0", &["'std'", "positive"][..]),
        ("std", "[0.2, -0.2, 0.2]", &["'std'", "positive"][..]),
        ("std", "abc", &["'std'", "\"abc\""][..]),
        ("std", "[0.2, 0.2]", &["'std'", "2 values"][..]),
        (
            "classes",
            "[\"a\", \"b\"]",
            &["'classes'", "2 names", "10 classes"][..],
        ),
        ("classes", "not json", &["'classes'", "JSON list"][..]),
    ] {
        let e = load_err(&safetensors_file(&w, &[(key, value)]), "meta.safetensors");
        assert_mentions(&e, needles);
        assert_mentions(&e, &["meta.safetensors"]);
    }
    // Sound metadata still loads.
    let ok = safetensors_file(&w, &[("mean", "[0.5, 0.5, 0.5]"), ("std", "0.25")]);
    load_bytes(&ok, "ok.safetensors", None).unwrap();
}

#[test]
fn classify_says_not_a_number_instead_of_ranking_nan_logits() {
    let mut w = resnet20_weights();
    w.get_mut("fc.bias").unwrap().data[3] = f32::NAN;
    let dir = tmp_dir("nanclassify");
    let model = dir.join("nanfc.safetensors");
    std::fs::write(&model, safetensors_file(&w, &[])).unwrap();
    for i in 0..2 {
        std::fs::write(dir.join(format!("img{i}.png")), png(i)).unwrap();
    }
    let one = dir.join("img0.png");
    let o = cli(&[
        "classify",
        "--model",
        s(&model),
        "--allow-non-finite",
        s(&one),
    ]);
    assert_fails_cleanly(&o, &["img0.png", "not a number", "1 NaN"]);
    assert!(stdout(&o).is_empty(), "ranked anyway: {}", stdout(&o));
    // Two images: one line each, a summary, and no ranking in the JSON.
    let (o, v) = classify_json(&[
        "--model",
        s(&model),
        "--allow-non-finite",
        s(&dir.join("img0.png")),
        s(&dir.join("img1.png")),
    ]);
    assert!(!o.status.success());
    assert_eq!(v, serde_json::json!([]));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[2].contains("2 of 2 images gave a result that is not a number"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 3: outputs that are not class scores; a final Softmax.

#[test]
fn classify_refuses_feature_map_outputs() {
    let mut m = resnet20_onnx();
    let g = m.graph.as_mut().unwrap();
    let gap = g
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("GlobalAveragePool"))
        .expect("a GlobalAveragePool");
    let feature_map = gap.input[0].clone();
    g.output[0].name = Some(feature_map);
    g.output[0].r#type = None;
    let dir = tmp_dir("featuremap");
    let model = dir.join("features.onnx");
    std::fs::write(&model, m.encode_to_vec()).unwrap();
    let img = dir.join("a.png");
    std::fs::write(&img, png(1)).unwrap();
    let o = cli(&[
        "classify",
        "--model",
        s(&model),
        "--preprocess",
        "cifar",
        s(&img),
    ]);
    assert_fails_cleanly(
        &o,
        &[
            "features.onnx",
            "64x8x8 feature map",
            "not a vector of class scores",
        ],
    );
}

#[test]
fn a_final_softmax_is_reported_as_probabilities_without_logits() {
    let dir = tmp_dir("softmax");
    let img = dir.join("a.png");
    std::fs::write(&img, png(2)).unwrap();
    let plain = local_fixture("resnet20/resnet20.onnx");
    let mut m = resnet20_onnx();
    let g = m.graph.as_mut().unwrap();
    let logits = g.output[0].name.clone().unwrap();
    let mut softmax = NodeProto {
        op_type: Some("Softmax".into()),
        input: vec![logits],
        output: vec!["probabilities".into()],
        name: Some("softmax".into()),
        ..Default::default()
    };
    softmax
        .attribute
        .push(resnet_wgpu::model::onnx::proto::AttributeProto {
            name: Some("axis".into()),
            i: Some(1),
            r#type: Some(2), // INT
            ..Default::default()
        });
    g.node.push(softmax);
    g.output[0].name = Some("probabilities".into());
    let with_softmax = dir.join("softmax.onnx");
    std::fs::write(&with_softmax, m.encode_to_vec()).unwrap();
    let run = |model: &Path| {
        let (o, v) = classify_json(&[
            "--model",
            s(model),
            "--preprocess",
            "cifar",
            "--top",
            "10",
            s(&img),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        v[0]["top"].as_array().unwrap().clone()
    };
    let want = run(&plain);
    let got = run(&with_softmax);
    assert!(want[0]["logit"].is_number());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["index"], w["index"]);
        assert!(
            g["logit"].is_null(),
            "a probability reported as a logit: {g}"
        );
        let (pg, pw) = (
            g["probability"].as_f64().unwrap(),
            w["probability"].as_f64().unwrap(),
        );
        // Soft-maxed twice, the top probability of 10 classes would be near 0.1 + a little.
        assert!(
            (pg - pw).abs() < 1e-4,
            "probability {pg} vs {pw} of the plain model"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 4: output files and `-`.

fn run_resnet20(output: &str) -> Output {
    let dir = local_fixture("resnet20");
    cli(&[
        "run",
        "--model",
        s(&dir.join("resnet20.safetensors")),
        "--input",
        s(&dir.join("resnet20.input.npy")),
        "--output",
        output,
    ])
}

fn assert_logits(bytes: &[u8]) {
    let t = read_npy(bytes, "output").unwrap();
    assert_eq!(t.shape, vec![2, 10]);
}

#[test]
fn output_through_a_symlink_replaces_its_target_and_keeps_the_link() {
    let dir = tmp_dir("symlink");
    let target = dir.join("real.npy");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.join("link.npy");
    std::os::unix::fs::symlink("real.npy", &link).unwrap();
    let o = run_resnet20(s(&link));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::symlink_metadata(&link).unwrap().is_symlink(),
        "the link was replaced"
    );
    assert_logits(&std::fs::read(&target).unwrap());
    // A dangling link: its target is created.
    let dangling = dir.join("dangling.npy");
    std::os::unix::fs::symlink("made.npy", &dangling).unwrap();
    let o = run_resnet20(s(&dangling));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(&dangling).unwrap().is_symlink());
    assert_logits(&std::fs::read(dir.join("made.npy")).unwrap());
}

#[test]
fn output_to_a_fifo_is_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tmp_dir("fifo");
    let fifo = dir.join("logits.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            std::fs::File::open(&fifo)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            let _ = tx.send(bytes);
        });
    }
    let o = run_resnet20(s(&fifo));
    assert!(o.status.success(), "{}", stderr(&o));
    // Checked first: a FIFO replaced by a rename leaves the reader waiting forever.
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO was replaced by a file"
    );
    let bytes = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("nothing was written into the FIFO");
    assert_logits(&bytes);
}

#[test]
fn dash_and_dev_stdout_write_to_standard_output() {
    for out in ["-", "/dev/stdout"] {
        let o = run_resnet20(out);
        assert!(o.status.success(), "{out}: {}", stderr(&o));
        assert_logits(&o.stdout);
    }
}

#[test]
fn dash_as_input_reads_standard_input() {
    let dir = local_fixture("resnet20");
    let mut child = bin()
        .args([
            "run",
            "--model",
            s(&dir.join("resnet20.safetensors")),
            "--input",
            "-",
            "--output",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = std::fs::read(dir.join("resnet20.input.npy")).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_logits(&o.stdout);
    // classify - reads one image.
    let mut child = bin()
        .args(["classify", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&png(3)).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["image"], "standard input");
    assert_eq!(v[0]["top"].as_array().unwrap().len(), 5);
}

// ---------------------------------------------------------------------------------------------
// Item 5: folders stream.

#[test]
fn classify_stream_holds_a_bounded_number_of_images_and_keeps_order() {
    use resnet_wgpu::classifier::StreamOptions;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let model = resnet_wgpu::model::default::default_model().unwrap();
    let classifier = resnet_wgpu::Classifier::new(common::gpu(), model, 4).unwrap();
    let decoded = AtomicUsize::new(0);
    let mut order = Vec::new();
    let mut decoded_at_first_result = None;
    let n = 64;
    // Three decoders, some slow, so images finish decoding out of order.
    let opts = StreamOptions {
        batch: 4,
        ahead: 2,
        decoders: 3,
    };
    let stats = classifier
        .classify_stream(
            0..n,
            |&i: &usize| {
                if i % 5 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                decoded.fetch_add(1, Ordering::SeqCst);
                Ok(image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(
                    28,
                    28,
                    |x, y| image::Luma([((x * y + i as u32 * 7) % 256) as u8]),
                )))
            },
            3,
            opts,
            |i, result| {
                decoded_at_first_result.get_or_insert(decoded.load(Ordering::SeqCst));
                assert_eq!(result.unwrap().len(), 3);
                order.push(i);
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(order, (0..n).collect::<Vec<_>>());
    assert_eq!(stats.images, n);
    assert_eq!(stats.failed, 0);
    let bound = opts.batch * (opts.ahead + 1) + opts.decoders - 1;
    assert!(
        stats.max_pending <= bound,
        "{} images were decoded but not yet classified at once (bound {bound})",
        stats.max_pending
    );
    let first = decoded_at_first_result.unwrap();
    assert!(
        first <= bound,
        "the first result came after {first} of {n} images were decoded"
    );
}

#[test]
fn classify_stream_stops_its_decoders_when_the_consumer_fails() {
    use resnet_wgpu::classifier::StreamOptions;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let model = resnet_wgpu::model::default::default_model().unwrap();
    let classifier = resnet_wgpu::Classifier::new(common::gpu(), model, 4).unwrap();
    let decoded = AtomicUsize::new(0);
    let opts = StreamOptions {
        batch: 4,
        ahead: 1,
        decoders: 4,
    };
    let err = classifier
        .classify_stream(
            0..10_000usize,
            |_: &usize| {
                decoded.fetch_add(1, Ordering::SeqCst);
                Ok(image::DynamicImage::ImageLuma8(image::GrayImage::new(
                    28, 28,
                )))
            },
            1,
            opts,
            |i, _| {
                anyhow::ensure!(i < 6, "stdout closed");
                Ok(())
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "stdout closed");
    // Returning at all shows no decoder was left waiting; and they stopped near the failure.
    let decoded = decoded.load(Ordering::SeqCst);
    assert!(decoded <= 8 + 4 + 4, "{decoded} images were decoded");
}

#[test]
fn classify_prints_results_before_the_last_image_is_read() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tmp_dir("streaming");
    for i in 0..10 {
        std::fs::write(dir.join(format!("img{i:02}.png")), png(i)).unwrap();
    }
    // The last image is a FIFO that gets its bytes only once output has appeared.
    let fifo = dir.join("zz_last.png");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut child = bin()
        .args(["classify", "--json", "--batch", "2", s(&dir)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"image\"") {
        let n = out.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "classify ended without output: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    // Output has started; now the FIFO must have a reader (the decoder, waiting for it).
    let started = std::time::Instant::now();
    let mut writer = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000) // O_NONBLOCK: fails with ENXIO while nobody reads
            .open(&fifo)
        {
            Ok(f) => break f,
            Err(e) => {
                assert!(
                    started.elapsed().as_secs() < 60,
                    "nobody opened the last image for reading: {e}"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    };
    writer.write_all(&png(99)).unwrap();
    drop(writer);
    out.read_to_end(&mut seen).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    let v: Value = serde_json::from_slice(&seen).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 11, "{v}");
    assert!(v[10]["image"].as_str().unwrap().ends_with("zz_last.png"));
}

// ---------------------------------------------------------------------------------------------
// Item 6: absurd depths.

#[test]
fn absurd_depths_are_refused_quickly() {
    for bad in ["resnet1000004", "resnet60002", "resnet2006", "plain-60002"] {
        let e = format!("{:#}", ArchSpec::parse(bad).unwrap_err());
        assert_mentions(&e, &[bad, "2000", "1202"]);
    }
    assert_eq!(ArchSpec::parse("resnet2000").unwrap().stages, vec![333; 3]);
    ArchSpec::parse("resnet1202").unwrap();
    // The command line answers at once (it grew to 22 GB before).
    let started = std::time::Instant::now();
    let mut child = bin()
        .args(["info", "--arch", "resnet1000004"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed().as_secs() > 10 {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("info --arch resnet1000004 still running after 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(!status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_mentions(&err, &["resnet1000004", "6n+2 from 8 to 2000"]);
}

// ---------------------------------------------------------------------------------------------
// Item 7: truncated JPEGs.

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 5) as u8, ((x ^ y) * 7) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

#[test]
fn truncated_jpegs_are_refused_like_truncated_pngs() {
    let full = jpeg(96, 64);
    decode_image(&full).unwrap();
    for keep in [full.len() / 2, full.len() * 9 / 10, full.len() - 2] {
        let e = match decode_image(&full[..keep]) {
            Ok(_) => panic!("a JPEG cut at {keep} of {} bytes decoded", full.len()),
            Err(e) => format!("{e:#}"),
        };
        assert_mentions(&e, &["truncated JPEG"]);
    }
    // Bytes after the end-of-image marker (some cameras append data) are fine.
    let mut trailing = full.clone();
    trailing.extend_from_slice(b"trailing bytes");
    decode_image(&trailing).unwrap();
    // The command line says so, like for a truncated PNG.
    let dir = tmp_dir("jpeg");
    let cut = dir.join("cut.jpg");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    assert_fails_cleanly(&cli(&["classify", s(&cut)]), &["cut.jpg", "truncated JPEG"]);
}

// ---------------------------------------------------------------------------------------------
// Item 8: one clear line for each.

#[test]
fn wgpu_backend_garbage_or_without_driver_is_one_clear_line() {
    let dir = local_fixture("resnet20");
    let model = dir.join("resnet20.safetensors");
    let input = dir.join("resnet20.input.npy");
    let out = tmp_dir("backend").join("o.npy");
    let run = |env: &[(&str, &str)]| {
        let mut c = bin();
        c.args([
            "run",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--output",
            s(&out),
        ]);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    assert_fails_cleanly(
        &run(&[("WGPU_BACKEND", "garbage")]),
        &["WGPU_BACKEND=\"garbage\" names no backend", "unset"],
    );
    // Vulkan asked for, but no Vulkan driver: say where the choice came from and what exists.
    let o = run(&[
        ("WGPU_BACKEND", "vulkan"),
        ("VK_ICD_FILENAMES", "/nonexistent/icd.json"),
        ("VK_DRIVER_FILES", "/nonexistent/icd.json"),
    ]);
    assert_fails_cleanly(
        &o,
        &[
            "no adapter on backend vulkan (from WGPU_BACKEND",
            "this machine has",
            "Gl",
        ],
    );
}

#[test]
fn hugging_face_checkpoints_are_named() {
    let t =
        |shape: &[usize]| Tensor::new(shape.to_vec(), vec![0.5; shape.iter().product()]).unwrap();
    let mut w = HashMap::new();
    w.insert(
        "resnet.embedder.embedder.convolution.weight".to_string(),
        t(&[64, 3, 7, 7]),
    );
    w.insert(
        "resnet.encoder.stages.0.layers.0.shortcut.convolution.weight".to_string(),
        t(&[256, 64, 1, 1]),
    );
    w.insert("classifier.1.weight".to_string(), t(&[1000, 2048]));
    let bytes = safetensors_file(&w, &[]);
    for arch in [None, Some("resnet50")] {
        let e = match load_bytes(&bytes, "hf.safetensors", arch) {
            Ok(_) => panic!("loaded"),
            Err(e) => format!("{e:#}"),
        };
        assert_mentions(
            &e,
            &[
                "hf.safetensors",
                "Hugging Face transformers",
                "not supported yet",
                "resnet.embedder",
            ],
        );
    }
}

#[test]
fn grouped_and_wide_convolutions_are_named_not_supported() {
    let t =
        |shape: &[usize]| Tensor::new(shape.to_vec(), vec![0.01; shape.iter().product()]).unwrap();
    // ResNeXt-50 32x4d's first block: the 3x3 is grouped (32 groups of 4 channels).
    let mut w = HashMap::new();
    w.insert("layer1.0.conv1.weight".to_string(), t(&[128, 64, 1, 1]));
    w.insert("layer1.0.conv2.weight".to_string(), t(&[128, 4, 3, 3]));
    let e = load_err(
        &safetensors_file(&w, &[("arch", "resnet50")]),
        "resnext.safetensors",
    );
    assert_mentions(
        &e,
        &[
            "resnext.safetensors",
            "layer1.0.conv2.weight",
            "grouped convolution (32 groups",
            "not supported",
        ],
    );
    // Wide ResNet-50-2: bottleneck width doubled.
    let mut w = HashMap::new();
    w.insert("layer1.0.conv1.weight".to_string(), t(&[128, 64, 1, 1]));
    w.insert("layer1.0.conv2.weight".to_string(), t(&[128, 128, 3, 3]));
    let e = load_err(
        &safetensors_file(&w, &[("arch", "resnet50")]),
        "wide.safetensors",
    );
    assert_mentions(
        &e,
        &[
            "wide.safetensors",
            "layer1.0.conv1.weight",
            "wide ResNet",
            "not supported",
        ],
    );
}

#[test]
fn pickles_and_misnamed_onnx_files_are_recognised() {
    // torch.save's zip format, an old-style pickle, an ONNX file named .safetensors, and a
    // safetensors file named .onnx.
    let mut zip = b"PK\x03\x04\x00\x00\x00\x00".to_vec();
    zip.extend_from_slice(b"archive/data.pklPADDING");
    let e = load_err(&zip, "model.safetensors");
    assert_mentions(
        &e,
        &[
            "model.safetensors",
            "PyTorch checkpoint",
            "safetensors.torch.save_file",
        ],
    );
    let e = load_err(
        b"\x80\x02}q\x00(X\x05\x00\x00\x00conv1q\x01",
        "model.pth.safetensors",
    );
    assert_mentions(&e, &["Python pickle"]);
    let onnx = std::fs::read(local_fixture("resnet20/resnet20.onnx")).unwrap();
    let e = load_err(&onnx, "resnet20.safetensors");
    assert_mentions(
        &e,
        &[
            "resnet20.safetensors",
            "an ONNX model",
            "rename it to .onnx",
        ],
    );
    let st = std::fs::read(local_fixture("resnet20/resnet20.safetensors")).unwrap();
    let e = load_err(&st, "resnet20.onnx");
    assert_mentions(
        &e,
        &[
            "resnet20.onnx",
            "a safetensors file",
            "rename it to .safetensors",
        ],
    );
    // The command line, for a .pth file.
    let dir = tmp_dir("pickle");
    let pth = dir.join("resnet18.pth");
    std::fs::write(&pth, b"\x80\x02}q\x00(X\x05\x00\x00\x00conv1q\x01").unwrap();
    let img = dir.join("a.png");
    std::fs::write(&img, png(0)).unwrap();
    assert_fails_cleanly(
        &cli(&["classify", "--model", s(&pth), s(&img)]),
        &["resnet18.pth", "Python pickle"],
    );
}

#[test]
fn zero_counts_are_errors_everywhere() {
    let img = tmp_dir("zero").join("a.png");
    std::fs::write(&img, png(0)).unwrap();
    let r20 = local_fixture("resnet20");
    let model = r20.join("resnet20.safetensors");
    let input = r20.join("resnet20.input.npy");
    for args in [
        vec!["classify", "--top", "0", s(&img)],
        vec!["classify", "--batch", "0", s(&img)],
        vec!["bench", "--arch", "resnet20", "--iters", "0"],
        vec!["bench", "--arch", "resnet20", "--batch", "0"],
        vec!["eval", "--dataset", "fashion-mnist", "--limit", "0"],
        vec!["eval", "--dataset", "fashion-mnist", "--batch", "0"],
        vec![
            "run",
            "--model",
            s(&model),
            "--input",
            s(&input),
            "--output",
            "-",
            "--batch",
            "0",
        ],
    ] {
        let o = cli(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_mentions(&stderr(&o), &["'0'", "must be at least 1"]);
    }
}

#[test]
fn classify_arch_without_model_is_an_error() {
    let img = tmp_dir("archonly").join("a.png");
    std::fs::write(&img, png(0)).unwrap();
    assert_fails_cleanly(
        &cli(&["classify", "--arch", "resnet18", s(&img)]),
        &["--arch resnet18 needs --model"],
    );
}

#[test]
fn misspelt_and_malformed_architecture_names() {
    let e = format!("{:#}", ArchSpec::parse("resent50").unwrap_err());
    assert_mentions(&e, &["resent50", "did you mean 'resnet50'?"]);
    let e = format!("{:#}", ArchSpec::parse("resnet51-v1").unwrap_err());
    assert_mentions(&e, &["did you mean 'resnet50-v1'?"]);
    for bad in [
        "resnet050",
        "resnet+50",
        "resnet20-a-c",
        "resnet50-v1-v1",
        "resnet 50",
        "resnet-50",
    ] {
        assert!(ArchSpec::parse(bad).is_err(), "{bad} was accepted");
    }
    for good in [
        "resnet50",
        "ResNet50",
        "resnet20-b",
        "resnet50-v1-c",
        "plain-20",
        "plain20",
    ] {
        ArchSpec::parse(good).unwrap_or_else(|e| panic!("{good}: {e:#}"));
    }
}

#[test]
fn empty_folders_broken_links_and_non_utf8_names() {
    // An empty folder is an error, not "none of the 0 images could be read".
    let empty = tmp_dir("emptyfolder");
    assert_fails_cleanly(
        &cli(&["classify", s(&empty)]),
        &["emptyfolder", "holds no files"],
    );
    // A broken link in a folder is reported; the good image is still classified.
    let dir = tmp_dir("links");
    std::fs::write(dir.join("a.png"), png(1)).unwrap();
    std::os::unix::fs::symlink("gone.png", dir.join("b.png")).unwrap();
    let (o, v) = classify_json(&[s(&dir)]);
    assert!(!o.status.success());
    assert_eq!(v.as_array().unwrap().len(), 1);
    let err = stderr(&o);
    assert!(
        err.lines().any(|l| l.starts_with("error:")
            && l.contains("b.png")
            && l.contains("broken symbolic link")),
        "{err}"
    );
    assert!(err.contains("1 of 2 images could not be read"), "{err}");
    // A name that is not UTF-8 stays recoverable in the JSON output.
    use std::os::unix::ffi::OsStrExt;
    let dir = tmp_dir("nonutf8");
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.png");
    std::fs::write(dir.join(name), png(2)).unwrap();
    let (o, v) = classify_json(&[s(&dir)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes: Vec<u8> = v[0]["image_bytes"]
        .as_array()
        .unwrap_or_else(|| panic!("no image_bytes: {v}"))
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(bytes, dir.join(name).as_os_str().as_bytes());
}

#[test]
fn float_tiffs_outside_zero_to_one_or_nan_are_refused() {
    let tiff = |f: &dyn Fn(u32, u32) -> f32| {
        let img = image::Rgb32FImage::from_fn(8, 8, |x, y| image::Rgb([f(x, y); 3]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb32F(img)
            .write_to(&mut out, image::ImageFormat::Tiff)
            .unwrap();
        out.into_inner()
    };
    decode_image(&tiff(&|x, y| (x + y) as f32 / 14.0)).unwrap();
    let e = format!(
        "{:#}",
        decode_image(&tiff(&|x, _| x as f32 * 30.0)).unwrap_err()
    );
    assert_mentions(&e, &["floating-point image", "from 0 to 210", "0..1"]);
    let e = format!(
        "{:#}",
        decode_image(&tiff(&|x, _| if x == 3 { f32::NAN } else { 0.5 })).unwrap_err()
    );
    assert_mentions(&e, &["floating-point image", "24 NaN"]);
}
