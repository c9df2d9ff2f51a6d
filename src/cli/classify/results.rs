//! Where `classify` puts each image's top classes: text or a JSON array on standard output, or
//! `--output FILE` as JSON lines or CSV, written as results arrive and put in place atomically
//! at the end (see `cli::output`).

use super::sources::Source;
use crate::cli::output::OutputFile;
use anyhow::{Result, anyhow, bail};
use resnet_wgpu::Prediction;
use std::io::Write;
use std::path::Path;

/// The format of `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object a line: {"image": ..., "top": [{"index", "label", "probability"}, ...]}
    Jsonl,
    /// A header, then one row an image: image, then label, index and probability per rank
    Csv,
}

impl Format {
    /// The format a file name asks for, by its extension.
    pub fn of(path: &Path, given: Option<Format>) -> Result<Format> {
        if let Some(f) = given {
            return Ok(f);
        }
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
        match ext.as_deref() {
            Some("jsonl" | "ndjson") => Ok(Format::Jsonl),
            Some("csv") => Ok(Format::Csv),
            _ => bail!(
                "{}: cannot tell the output format from the name: use a .jsonl or .csv name, or --output-format jsonl|csv",
                path.display()
            ),
        }
    }
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

fn text_record(source: &Source, top: &[Prediction]) -> String {
    let mut out = format!("{}\n", source.name());
    let width = top
        .iter()
        .map(|p| p.label.chars().count())
        .max()
        .unwrap_or(5);
    for (rank, p) in top.iter().enumerate() {
        out += &format!(
            "  {}. {:<width$}  {:>6.2}%  (class {})\n",
            rank + 1,
            p.label,
            p.probability * 100.0,
            p.index
        );
    }
    out
}

/// Where results go.
pub enum Results {
    Text,
    /// A JSON array on standard output, and how many records it has so far.
    JsonArray(usize),
    File(OutputFile, Format),
}

impl Results {
    pub fn stdout(json: bool) -> Self {
        if json {
            Results::JsonArray(0)
        } else {
            Results::Text
        }
    }

    /// `path` in `format`, with a CSV header for `top` ranks.
    pub fn file(path: &Path, format: Format, top: usize) -> Result<Self> {
        let mut out = OutputFile::create(path)?;
        if format == Format::Csv {
            let mut header = vec!["image".to_string()];
            for rank in 1..=top {
                for field in ["label", "index", "probability"] {
                    header.push(format!("top{rank}_{field}"));
                }
            }
            out.write(&csv_row(&header)?)?;
        }
        Ok(Results::File(out, format))
    }

    pub fn add(&mut self, source: &Source, top: &[Prediction]) -> Result<()> {
        match self {
            Results::Text => write_stdout(text_record(source, top).as_bytes()),
            Results::JsonArray(printed) => {
                let record = serde_json::to_string_pretty(&json_record(source, top))?;
                let record = record.replace('\n', "\n  ");
                let lead = if *printed == 0 { "[\n  " } else { ",\n  " };
                *printed += 1;
                write_stdout(format!("{lead}{record}").as_bytes())
            }
            Results::File(out, Format::Jsonl) => {
                let mut line = serde_json::to_string(&json_record(source, top))?;
                line.push('\n');
                out.write(line.as_bytes())
            }
            Results::File(out, Format::Csv) => {
                let mut row = vec![source.name()];
                for p in top {
                    row.extend([
                        p.label.clone(),
                        p.index.to_string(),
                        p.probability.to_string(),
                    ]);
                }
                out.write(&csv_row(&row)?)
            }
        }
    }

    /// Closes the JSON array, or puts the output file in place.
    pub fn finish(self) -> Result<()> {
        match self {
            Results::Text => Ok(()),
            Results::JsonArray(printed) => {
                write_stdout(if printed == 0 { b"[]\n" } else { b"\n]\n" })
            }
            Results::File(out, _) => out.commit(),
        }
    }
}

fn csv_row(fields: &[String]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields)?;
    w.into_inner().map_err(|e| anyhow!("{e}"))
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| anyhow!("standard output: cannot write: {e}"))
}
