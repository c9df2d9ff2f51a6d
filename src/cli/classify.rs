//! `resnet-wgpu classify [--model FILE] [--arch NAME] [--labels FILE] [--top K] [--json] IMAGE...`
//!
//! Images (files, `-` for standard input, folders one level deep) stream through the model in
//! batches: each batch's results are printed as soon as it has run, with a progress bar on
//! stderr, and memory stays bounded however many images a folder holds. Every image that cannot
//! be read or whose result is not a number gets its own `error:` line; the others are still
//! classified, and the exit status says whether all went well.

use super::output::{input_name, is_dash, read_input};
use super::{GpuArgs, ModelArgs, SessionArgs, positive};
use anyhow::{Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use resnet_wgpu::classifier::StreamOptions;
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::model::default::default_model;
use resnet_wgpu::preprocess::{Preprocess, decode_image};
use resnet_wgpu::{Classifier, Error, Prediction, SessionOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Class names, one a line (default: the model's own, or ImageNet's for 1000 classes)
    #[arg(long)]
    labels: Option<PathBuf>,
    /// How many classes to show per image (at least 1)
    #[arg(long, default_value_t = 5, value_parser = positive)]
    top: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Preprocessing when the model file does not describe it: imagenet, cifar or fashion-mnist
    #[arg(long)]
    preprocess: Option<String>,
    /// Images per forward pass (at least 1)
    #[arg(long, default_value_t = 16, value_parser = positive)]
    batch: usize,
    #[command(flatten)]
    session: SessionArgs,
    /// Image files, folders of images, or - for one image on standard input
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[command(flatten)]
    gpu: GpuArgs,
}

/// One thing to classify, as named on the command line or found in a folder.
enum Source {
    File(PathBuf),
    Stdin,
    /// Known bad before decoding (a broken link, an empty folder): the path and why.
    Bad(PathBuf, String),
}

impl Source {
    fn path(&self) -> &Path {
        match self {
            Source::File(p) | Source::Bad(p, _) => p,
            Source::Stdin => Path::new("-"),
        }
    }

    fn name(&self) -> String {
        match self {
            Source::Stdin => input_name(Path::new("-")),
            _ => self.path().display().to_string(),
        }
    }

    fn decode(&self) -> Result<image::DynamicImage> {
        match self {
            Source::Bad(_, why) => Err(anyhow!("{why}")),
            _ => {
                let bytes = read_input(self.path())?;
                decode_image(&bytes).map_err(|e| anyhow!("{}: {e:#}", self.name()))
            }
        }
    }
}

/// The files named on the command line, with folders expanded (sorted, one level; subfolders
/// are not entered). A broken symbolic link and an empty folder are reported, not skipped.
fn expand(paths: &[PathBuf]) -> Vec<Source> {
    let mut out = Vec::new();
    for p in paths {
        if is_dash(p) {
            out.push(Source::Stdin);
            continue;
        }
        if !p.is_dir() {
            out.push(Source::File(p.clone()));
            continue;
        }
        let entries = match std::fs::read_dir(p) {
            Ok(entries) => entries,
            Err(e) => {
                let why = format!("{}: cannot list the folder: {e}", p.display());
                out.push(Source::Bad(p.clone(), why));
                continue;
            }
        };
        let mut found: Vec<Source> = Vec::new();
        for entry in entries {
            let path = match entry {
                Ok(e) => e.path(),
                Err(e) => {
                    let why = format!("{}: cannot list the folder: {e}", p.display());
                    found.push(Source::Bad(p.clone(), why));
                    continue;
                }
            };
            let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink());
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => found.push(Source::File(path)),
                Err(_) if is_link => {
                    let target = std::fs::read_link(&path)
                        .map(|t| t.display().to_string())
                        .unwrap_or_else(|_| "?".into());
                    let why = format!(
                        "{}: broken symbolic link (its target {target} does not exist)",
                        path.display()
                    );
                    found.push(Source::Bad(path, why));
                }
                Err(e) => {
                    let why = format!("{}: cannot read: {e}", path.display());
                    found.push(Source::Bad(path, why));
                }
            }
        }
        if found.is_empty() {
            let why = format!(
                "{}: the folder holds no files to classify (subfolders are not searched)",
                p.display()
            );
            out.push(Source::Bad(p.clone(), why));
        }
        found.sort_by(|a, b| a.path().cmp(b.path()));
        out.extend(found);
    }
    out
}

/// One image's JSON record. The `image` field is the path as text; a path that is not valid
/// UTF-8 loses bytes there, so it also gets `image_bytes`, the path's exact bytes.
fn json_record(source: &Source, top: &[Prediction]) -> serde_json::Value {
    let mut v = serde_json::json!({"image": source.name(), "top": top});
    #[cfg(unix)]
    if let Source::File(p) = source
        && p.to_str().is_none()
    {
        use std::os::unix::ffi::OsStrExt;
        v["image_bytes"] = serde_json::json!(p.as_os_str().as_bytes());
    }
    v
}

fn print_text(out: &mut impl Write, source: &Source, top: &[Prediction]) -> std::io::Result<()> {
    writeln!(out, "{}", source.name())?;
    let width = top
        .iter()
        .map(|p| p.label.chars().count())
        .max()
        .unwrap_or(5);
    for (rank, p) in top.iter().enumerate() {
        writeln!(
            out,
            "  {}. {:<width$}  {:>6.2}%  (class {})",
            rank + 1,
            p.label,
            p.probability * 100.0,
            p.index
        )?;
    }
    Ok(())
}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let model = match (&args.model.model, &args.model.arch) {
        (Some(path), arch) => args.model.load(path, arch.as_deref())?,
        (None, Some(arch)) => bail!(
            "--arch {arch} needs --model FILE (the weights); without --model, classify uses the embedded default model, which names its own architecture"
        ),
        (None, None) => default_model()?,
    };
    let sources = expand(&args.images);
    let total = sources.len();
    let ctx = GpuContext::new_blocking(&args.gpu.options())?;
    let batch = args.batch.min(total).max(1);
    let preprocess = match &args.preprocess {
        Some(name) => Preprocess::named(name)?,
        None => Preprocess::for_model(&model),
    };
    let options = SessionOptions {
        batch,
        precision: args.session.precision,
        tune: args.session.tune,
        tune_budget: args.session.tune_budget.0,
        ..Default::default()
    };
    let mut classifier = Classifier::with_options(ctx, model, preprocess, &options)?;
    args.session.report_tuning(classifier.session());
    if let Some(path) = &args.labels {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
        classifier
            .set_labels(text.lines().map(str::to_string).collect())
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    }

    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, eta {eta}")
            .expect("static template"),
    );
    let stdout = std::io::stdout();
    let mut printed = 0usize;
    let (mut unreadable, mut not_a_number) = (0usize, 0usize);
    let mut only_error = None;
    let stream = StreamOptions { batch, ahead: 2 };
    classifier.classify_stream(
        sources,
        |s: &Source| s.decode(),
        args.top,
        stream,
        |source, result| {
            bar.inc(1);
            let top = match result {
                Ok(top) => top,
                Err(e) => {
                    let decoded =
                        matches!(e.downcast_ref::<Error>(), Some(Error::NotANumber { .. }));
                    let e = if decoded {
                        anyhow!("{}: {e:#}", source.name())
                    } else {
                        e
                    };
                    if decoded {
                        not_a_number += 1;
                    } else {
                        unreadable += 1;
                    }
                    if total == 1 {
                        only_error = Some(e);
                    } else {
                        bar.suspend(|| eprintln!("error: {}", format!("{e:#}").replace('\n', " ")));
                    }
                    return Ok(());
                }
            };
            let mut out = stdout.lock();
            bar.suspend(|| -> Result<()> {
                if args.json {
                    let record = serde_json::to_string_pretty(&json_record(&source, &top))?;
                    let record = record.replace('\n', "\n  ");
                    let lead = if printed == 0 { "[\n  " } else { ",\n  " };
                    write!(out, "{lead}{record}")?;
                } else {
                    print_text(&mut out, &source, &top)?;
                }
                out.flush()?;
                Ok(())
            })
            .map_err(|e| anyhow!("standard output: cannot write: {e:#}"))?;
            printed += 1;
            Ok(())
        },
    )?;
    bar.finish_and_clear();
    if args.json {
        let mut out = stdout.lock();
        let close = if printed == 0 { "[]\n" } else { "\n]\n" };
        out.write_all(close.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| anyhow!("standard output: cannot write: {e}"))?;
    }
    if let Some(e) = only_error {
        return Err(e);
    }
    let failed = unreadable + not_a_number;
    if failed == 0 {
        return Ok(());
    }
    if printed == 0 && not_a_number == 0 {
        bail!("none of the {total} images could be read");
    }
    match (unreadable, not_a_number) {
        (u, 0) => bail!("{u} of {total} images could not be read"),
        (0, n) => bail!("{n} of {total} images gave a result that is not a number"),
        (u, n) => bail!(
            "{failed} of {total} images failed: {u} could not be read, {n} gave a result that is not a number"
        ),
    }
}
