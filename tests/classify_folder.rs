//! `classify FOLDER --output results.jsonl|csv`: folders walked recursively, decoded on several
//! threads, results written as JSON lines or CSV and put in place at the end. The results must be
//! those `classify --json` gives for the same files one at a time with one decoder.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_resnet-wgpu"));
    c.env("RESNET_WGPU_TUNE", "off")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn cli(args: &[&str]) -> Output {
    bin().args(args).output().expect("cannot start resnet-wgpu")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("resnet-wgpu-folder-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A 28x28 gray PNG, a different pattern per `seed` (the default model's input).
fn png(seed: u32) -> Vec<u8> {
    let img = image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([((x * (seed % 7 + 1) + y * (seed % 5 + 2) + seed * 37) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A folder tree of 11 images (two levels, one name with a comma and a quote), a file that is not
/// an image, and hidden entries that must be skipped. Returns the folder and its images in the
/// order `classify` must report them.
fn photo_tree(tag: &str) -> (PathBuf, Vec<PathBuf>) {
    let root = tmp_dir(tag);
    let names = [
        "a/01.png",
        "a/b/02.png",
        "a/b/10.png",
        "a/c/x, \"y\".png",
        "b.png",
        "c/1.png",
        "c/2.png",
        "c/3.png",
        "c/d/e/4.png",
        "z1.png",
        "z2.png",
    ];
    let mut images = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, png(i as u32)).unwrap();
        images.push(path);
    }
    std::fs::write(root.join("a/notes.txt"), b"not an image").unwrap();
    std::fs::create_dir_all(root.join(".thumbnails")).unwrap();
    std::fs::write(root.join(".thumbnails/t.png"), png(99)).unwrap();
    std::fs::write(root.join("c/.DS_Store"), b"\0\0\0\x01Bud1").unwrap();
    (root, images)
}

/// `classify --json` on each image, one by one with one decoder: the reference records.
fn one_by_one(images: &[PathBuf]) -> Vec<Value> {
    let mut args = vec!["classify", "--json", "--batch", "1", "--decoders", "1"];
    args.extend(images.iter().map(|p| s(p)));
    let o = cli(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array().unwrap().clone()
}

fn assert_same_top(got: &Value, want: &Value) {
    assert_eq!(got["image"], want["image"]);
    let (g, w) = (
        got["top"].as_array().unwrap(),
        want["top"].as_array().unwrap(),
    );
    assert_eq!(g.len(), w.len());
    for (g, w) in g.iter().zip(w) {
        assert_eq!(g["index"], w["index"], "{}", got["image"]);
        assert_eq!(g["label"], w["label"]);
        let (gp, wp) = (
            g["probability"].as_f64().unwrap(),
            w["probability"].as_f64().unwrap(),
        );
        // Batch 4 and batch 1 may take different kernels: agreement to float rounding.
        assert!((gp - wp).abs() < 1e-5, "{}: {gp} vs {wp}", got["image"]);
    }
}

#[test]
fn a_folder_tree_becomes_json_lines_in_order_with_bad_files_reported() {
    let (root, images) = photo_tree("jsonl");
    let want = one_by_one(&images);
    let out = root.join("results.jsonl");
    std::fs::write(&out, b"the previous results\n").unwrap();
    let o = cli(&[
        "classify",
        s(&root),
        "--output",
        s(&out),
        "--batch",
        "4",
        "--decoders",
        "3",
        "--top",
        "3",
    ]);
    // The text file is reported and counted; the 11 images are classified; the previous
    // results, in the folder, are not read as an image.
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "a bad file must make the exit status say so"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("error:") && l.contains("notes.txt")),
        "{err}"
    );
    assert!(err.contains("1 of 12 images could not be read"), "{err}");
    assert!(err.contains("classified 11 of 12 images in"), "{err}");
    assert!(o.stdout.is_empty(), "results go to the file only");
    let text = std::fs::read_to_string(&out).unwrap();
    let got: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), images.len(), "{text}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["top"].as_array().unwrap().len(), 3);
        let mut w = w.clone();
        w["top"] = Value::Array(w["top"].as_array().unwrap()[..3].to_vec());
        assert_same_top(g, &w);
    }
    // Nothing but the results is left beside them (no temporary file).
    let beside: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.') && n != ".thumbnails")
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn csv_quotes_names_and_files_from_reads_a_list() {
    let (root, images) = photo_tree("csv");
    let want = one_by_one(&images);
    // The same images named by a list on standard input (blank lines skipped, CRLF accepted).
    let list: String = images
        .iter()
        .map(|p| format!("{}\r\n\n", p.display()))
        .collect();
    let out = root.join("results.csv");
    let mut child = bin()
        .args([
            "classify",
            "--files-from",
            "-",
            "--output",
            s(&out),
            "--batch",
            "5",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header.len(), 1 + 5 * 3);
    assert_eq!(
        header[..4],
        ["image", "top1_label", "top1_index", "top1_probability"]
    );
    assert_eq!(header[15], "top5_probability");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), images.len());
    for (row, w) in rows.iter().zip(&want) {
        assert_eq!(row.len(), header.len());
        assert_eq!(row[0], *w["image"].as_str().unwrap());
        for rank in 0..5 {
            let w = &w["top"][rank];
            assert_eq!(row[1 + rank * 3], *w["label"].as_str().unwrap());
            assert_eq!(row[2 + rank * 3], w["index"].to_string());
            let p: f64 = row[3 + rank * 3].parse().unwrap();
            assert!((p - w["probability"].as_f64().unwrap()).abs() < 1e-5);
        }
    }
    assert!(rows.iter().any(|r| r[0].ends_with("x, \"y\".png")));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_output_names_fail_before_the_gpu_starts_and_leave_no_file() {
    let (root, images) = photo_tree("badout");
    std::fs::create_dir(root.join("a.jsonl")).unwrap();
    let one = s(&images[0]);
    for (out, needle) in [
        (root.join("results.txt"), "cannot tell the output format"),
        (root.join("no/such/folder/r.jsonl"), "cannot write"),
        (root.join("a.jsonl"), "cannot write"),
    ] {
        let o = cli(&["classify", one, "--output", s(&out)]);
        let err = stderr(&o);
        assert!(!o.status.success());
        assert!(!err.contains("panicked"), "{err}");
        let lines: Vec<_> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].contains(needle), "{err}");
    }
    assert!(!root.join("results.txt").exists());
    assert!(
        root.join("a").is_dir(),
        "a folder named as the output stays a folder"
    );
    // --json and --output are one or the other; an empty list is refused.
    let o = cli(&[
        "classify",
        one,
        "--json",
        "--output",
        s(&root.join("r.jsonl")),
    ]);
    assert!(!o.status.success());
    let list = root.join("empty.txt");
    std::fs::write(&list, "\n\n").unwrap();
    let o = cli(&["classify", "--files-from", s(&list)]);
    assert!(
        stderr(&o).contains("error: the file list names no images"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&root).unwrap();
}
