//! The in-browser demo end to end: builds the site with `web/build.sh` (wasm32 + wasm-bindgen +
//! wasm-opt) and drives it in Debian's headless Chromium on WebGPU (SwiftShader) with
//! `web/tests/browser.mjs` (playwright-core). It fails, never skips, when Chromium, node,
//! playwright-core or the wasm toolchain is missing: `.ci/run` installs them all.
//!
//! The site and the screenshots go to `target/web-test/` (the committed `web/screenshot.png` is a
//! copy of `target/web-test/screenshot.png`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target directory this test was built in (target/<profile>/deps/web-HASH).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("no current exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root().join("target"))
}

/// Runs `cmd` to completion within `limit`, echoing what it printed; panics (with that output)
/// if it fails, cannot start or runs too long.
fn run(what: &str, cmd: &mut Command, limit: Duration) {
    let started = Instant::now();
    let out_file = tempfile_path(what);
    let log = std::fs::File::create(&out_file).expect("cannot create a log file");
    let mut child = cmd
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait failed") {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&out_file).unwrap_or_default();
    let _ = std::fs::remove_file(&out_file);
    eprintln!(
        "--- {what} ({:.1} s) ---\n{output}",
        started.elapsed().as_secs_f64()
    );
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("{what} failed ({s}):\n{output}"),
        None => panic!("{what} ran past {limit:?}:\n{output}"),
    }
}

fn tempfile_path(what: &str) -> PathBuf {
    let slug: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    std::env::temp_dir().join(format!("resnet-wgpu-{slug}-{}.log", std::process::id()))
}

#[test]
fn the_web_demo_classifies_and_matches_the_reference_in_headless_chromium() {
    let root = root();
    let target = target_dir();
    let out = target.join("web-test");
    let dist = out.join("dist");
    assert!(
        root.join("web/node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` in web/ (.ci/run does)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: apt-get install chromium (.ci/run does)"
    );
    run(
        "web/build.sh",
        Command::new("bash")
            .arg(root.join("web/build.sh"))
            .arg(&dist)
            .env("CARGO_TARGET_DIR", &target),
        Duration::from_secs(40 * 60),
    );
    let wasm = std::fs::metadata(dist.join("pkg/resnet_wgpu_web_bg.wasm"))
        .expect("the build wrote no .wasm")
        .len();
    assert!(
        wasm < 2_000_000,
        "the optimised .wasm is {wasm} bytes (the budget is 2 MB)"
    );
    run(
        "web/tests/browser.mjs",
        Command::new("node")
            .arg(root.join("web/tests/browser.mjs"))
            .arg(&dist)
            .arg(&out),
        Duration::from_secs(10 * 60),
    );
}
