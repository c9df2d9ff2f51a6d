//! `resnet-wgpu classify [--model FILE|DIR] [--labels FILE] [--top K] [--json] [--batch N]
//! [--output FILE.jsonl|FILE.csv] [--files-from LIST] IMAGE|FOLDER...`
//!
//! Images (files, `-` for standard input, folders walked recursively, a list of paths) stream
//! through the model in batches, decoded on several threads while the GPU runs the previous
//! batch: each batch's results are written as soon as it has run, with a progress bar on
//! stderr, and memory stays bounded however many images a folder holds. Every image that cannot
//! be read or whose result is not a number gets its own `error:` line; the others are still
//! classified, and the exit status says whether all went well.

mod results;
mod sources;

use super::{GpuArgs, ModelArgs, SessionArgs, positive};
use anyhow::{Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use resnet_wgpu::classifier::{StreamOptions, default_decoders};
use resnet_wgpu::gpu::GpuContext;
use resnet_wgpu::model::default::default_model;
use resnet_wgpu::preprocess::Preprocess;
use resnet_wgpu::{Classifier, Error, SessionOptions};
use results::{Format, Results};
use sources::{Source, expand, read_list};
use std::path::PathBuf;

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
    /// Print JSON (an array) on standard output
    #[arg(long, conflicts_with = "output")]
    json: bool,
    /// Write the results to this file instead, one line an image as it is classified, put in
    /// place when all are done: FILE.jsonl (JSON lines) or FILE.csv; - is standard output
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// The format of --output when its name does not say (jsonl or csv)
    #[arg(long, requires = "output")]
    output_format: Option<Format>,
    /// Also classify the files listed in LIST, one path a line (- for standard input)
    #[arg(long, value_name = "LIST")]
    files_from: Option<PathBuf>,
    /// Threads that decode images while the GPU runs (default: one per core but one, at most 8)
    #[arg(long, value_parser = positive)]
    decoders: Option<usize>,
    /// Preprocessing when the model file does not describe it: imagenet, cifar or fashion-mnist
    #[arg(long)]
    preprocess: Option<String>,
    /// Images per forward pass (at least 1)
    #[arg(long, default_value_t = 16, value_parser = positive)]
    batch: usize,
    #[command(flatten)]
    session: SessionArgs,
    /// Image files, folders of images (searched recursively), or - for one image on standard input
    #[arg(required_unless_present = "files_from")]
    images: Vec<PathBuf>,
    #[command(flatten)]
    gpu: GpuArgs,
}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let model = match (&args.model.model, &args.model.arch) {
        (Some(path), arch) => args.model.load(path, arch.as_deref())?,
        (None, Some(arch)) => bail!(
            "--arch {arch} needs --model FILE (the weights); without --model, classify uses the embedded default model, which names its own architecture"
        ),
        (None, None) => default_model()?,
    };
    let mut paths = args.images.clone();
    if let Some(list) = &args.files_from {
        paths.extend(read_list(list)?);
    }
    let sources = expand(&paths, args.output.as_deref());
    let total = sources.len();
    if total == 0 {
        bail!("the file list names no images");
    }
    // Before the GPU starts, so a bad name costs nothing.
    let format = match &args.output {
        Some(path) => Some(Format::of(path, args.output_format)?),
        None => None,
    };
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

    let mut results = match (&args.output, format) {
        (Some(path), Some(format)) => Results::file(path, format, args.top)?,
        _ => Results::stdout(args.json),
    };

    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, eta {eta}")
            .expect("static template"),
    );
    let mut classified = 0usize;
    let (mut unreadable, mut not_a_number) = (0usize, 0usize);
    let mut only_error = None;
    let stream = StreamOptions {
        batch,
        ahead: 2,
        decoders: args.decoders.unwrap_or_else(default_decoders),
    };
    let start = std::time::Instant::now();
    classifier.classify_stream(
        sources,
        Source::decode,
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
            bar.suspend(|| results.add(&source, &top))?;
            classified += 1;
            Ok(())
        },
    )?;
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    results.finish()?;
    if let Some(path) = &args.output {
        // The figure a folder run is judged by: images/s from the first decode to the last result.
        eprintln!(
            "classified {classified} of {total} images in {seconds:.2} s ({:.1} images/s; batch {batch}, decoder threads {}){}",
            total as f64 / seconds.max(1e-9),
            stream.decoders,
            if super::output::is_dash(path) {
                String::new()
            } else {
                format!("; results in {}", path.display())
            }
        );
    }
    if let Some(e) = only_error {
        return Err(e);
    }
    let failed = unreadable + not_a_number;
    if failed == 0 {
        return Ok(());
    }
    if classified == 0 && not_a_number == 0 {
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
