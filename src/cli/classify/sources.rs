//! What `classify` reads: the images named on the command line, folders walked recursively
//! (sorted, hidden files and folders skipped), and `--files-from LIST`.

use crate::cli::output::{input_name, is_dash, read_input};
use anyhow::{Result, anyhow};
use resnet_wgpu::preprocess::decode_image;
use std::path::{Path, PathBuf};

/// One thing to classify, as named on the command line or found in a folder.
pub enum Source {
    File(PathBuf),
    Stdin,
    /// Known bad before decoding (a broken link, an empty folder): the path and why.
    Bad(PathBuf, String),
}

impl Source {
    pub fn path(&self) -> &Path {
        match self {
            Source::File(p) | Source::Bad(p, _) => p,
            Source::Stdin => Path::new("-"),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Source::Stdin => input_name(Path::new("-")),
            _ => self.path().display().to_string(),
        }
    }

    pub fn decode(&self) -> Result<image::DynamicImage> {
        match self {
            Source::Bad(_, why) => Err(anyhow!("{why}")),
            _ => {
                let bytes = read_input(self.path())?;
                decode_image(&bytes).map_err(|e| anyhow!("{}: {e:#}", self.name()))
            }
        }
    }
}

/// The paths of a `--files-from` list: one a line, blank lines skipped, `-` for standard input.
/// Relative paths are relative to the current folder, as on the command line.
pub fn read_list(list: &Path) -> Result<Vec<PathBuf>> {
    let bytes = read_input(list)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("{}: the file list is not UTF-8 text", input_name(list)))?;
    Ok(text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .map(PathBuf::from)
        .collect())
}

/// The files named, with folders expanded: every file below them, depth first, sorted by name
/// within each folder, following symbolic links. Files and folders whose names start with `.`
/// inside a folder are skipped (`.DS_Store`, `.git`); named on the command line they are read.
/// A broken symbolic link, a link loop and an empty folder are reported, not skipped. `output`
/// (where the results go) is left out of folders: a rerun must not classify its last results.
pub fn expand(paths: &[PathBuf], output: Option<&Path>) -> Vec<Source> {
    let output = output.and_then(|p| std::fs::canonicalize(p).ok());
    let mut out = Vec::new();
    for p in paths {
        if is_dash(p) {
            out.push(Source::Stdin);
        } else if p.is_dir() {
            let before = out.len();
            walk(p, output.as_deref(), &mut out);
            if out.len() == before {
                let why = format!("{}: the folder holds no files to classify", p.display());
                out.push(Source::Bad(p.clone(), why));
            }
        } else {
            out.push(Source::File(p.clone()));
        }
    }
    out
}

fn walk(folder: &Path, output: Option<&Path>, out: &mut Vec<Source>) {
    let hidden =
        |e: &walkdir::DirEntry| e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.');
    let entries = walkdir::WalkDir::new(folder)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !hidden(e));
    for entry in entries {
        match entry {
            Ok(e) if e.file_type().is_dir() => {}
            Ok(e)
                if output.is_some()
                    && std::fs::canonicalize(e.path()).ok().as_deref() == output => {}
            Ok(e) => out.push(Source::File(e.into_path())),
            Err(e) => {
                let path = e.path().unwrap_or(folder).to_path_buf();
                let why = walk_error(&path, &e);
                out.push(Source::Bad(path, why));
            }
        }
    }
}

fn walk_error(path: &Path, e: &walkdir::Error) -> String {
    if let Some(ancestor) = e.loop_ancestor() {
        return format!(
            "{}: symbolic link loop (it leads back to {}); not followed",
            path.display(),
            ancestor.display()
        );
    }
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink());
    if is_link && std::fs::metadata(path).is_err() {
        let target = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".into());
        return format!(
            "{}: broken symbolic link (its target {target} does not exist)",
            path.display()
        );
    }
    match e.io_error() {
        Some(io) if e.depth() == 0 || std::fs::metadata(path).is_ok_and(|m| m.is_dir()) => {
            format!("{}: cannot list the folder: {io}", path.display())
        }
        Some(io) => format!("{}: cannot read: {io}", path.display()),
        None => format!("{}: {e}", path.display()),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn names(sources: &[Source], root: &Path) -> Vec<String> {
        sources
            .iter()
            .map(|s| match s {
                Source::File(p) => p.strip_prefix(root).unwrap().display().to_string(),
                Source::Stdin => "-".into(),
                Source::Bad(p, why) => {
                    format!("bad {}: {why}", p.strip_prefix(root).unwrap().display())
                }
            })
            .collect()
    }

    #[test]
    fn folders_are_walked_recursively_sorted_and_without_hidden_entries() {
        let root = std::env::temp_dir().join(format!("resnet-wgpu-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["a/b", "a/.git", "c", "empty"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in [
            "z.png",
            "a/b/2.png",
            "a/b/10.png",
            "a/1.png",
            "a/.DS_Store",
            "a/.git/x",
            "c/.hidden",
        ] {
            std::fs::write(root.join(file), b"").unwrap();
        }
        std::os::unix::fs::symlink("..", root.join("a/b/up")).unwrap();
        let found = expand(std::slice::from_ref(&root), Some(&root.join("z.png")));
        let found = names(&found, &root);
        assert_eq!(found[0], "a/1.png");
        assert_eq!(found[1], "a/b/10.png");
        assert_eq!(found[2], "a/b/2.png");
        assert!(
            found[3].starts_with("bad a/b/up: ") && found[3].contains("symbolic link loop"),
            "{found:?}"
        );
        assert_eq!(found.len(), 4, "z.png is the output: {found:?}");
        // A folder holding only hidden files is empty; a hidden file named outright is read.
        let found = expand(&[root.join("c"), root.join("a/.DS_Store")], None);
        let found = names(&found, &root);
        assert_eq!(
            found,
            [
                "bad c: ".to_string()
                    + &format!(
                        "{}: the folder holds no files to classify",
                        root.join("c").display()
                    ),
                "a/.DS_Store".into()
            ]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
