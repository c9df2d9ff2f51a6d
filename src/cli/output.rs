//! Where the command line writes its output files (`run --output`, `eval --predictions`,
//! `portability --json / --markdown`) and reads `-` as standard input.
//!
//! A regular file (or a new one) is replaced atomically: a temporary file beside it, then a
//! rename, so a failure never leaves a half-written output. Everything else is written through,
//! because a rename would replace it: a symbolic link gets its target replaced atomically (the
//! link stays a link; renaming over the link made it a regular file and left the target empty),
//! and a FIFO, a character or block device (`/dev/stdout`, `/dev/full`, `/dev/null`) is opened
//! and written in place (renaming over `/dev/full` as root turned the device into a 208-byte
//! regular file). `-` is standard output.

use anyhow::{Result, anyhow};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Whether `path` is the conventional `-` (standard input or output).
pub fn is_dash(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How an output path is written.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Stdout,
    /// A regular file, or none yet: temporary file + rename, at this path.
    Replace(PathBuf),
    /// A FIFO or a device: opened and written in place.
    InPlace,
}

/// What `path` really is, following symbolic links (a chain of them, or one whose target does not
/// exist yet) to the path that will be written.
fn target_of(path: &Path) -> Result<Target> {
    if is_dash(path) {
        return Ok(Target::Stdout);
    }
    match std::fs::metadata(path) {
        // Links resolved by the kernel: /dev/stdout -> /proc/self/fd/1 -> a pipe or a terminal.
        Ok(m) if m.is_file() => {
            let real = std::fs::canonicalize(path)
                .map_err(|e| anyhow!("{}: cannot write: {e}", path.display()))?;
            return Ok(Target::Replace(real));
        }
        // A folder fails at the rename, with the usual message and no temporary file left.
        Ok(m) if m.is_dir() => return Ok(Target::Replace(path.to_path_buf())),
        Ok(_) => return Ok(Target::InPlace),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow!("{}: cannot write: {e}", path.display())),
    }
    // Nothing there yet: the path itself, or the missing end of a chain of links.
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&p)
                    .map_err(|e| anyhow!("{}: cannot read the link: {e}", path.display()))?;
                p = match p.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(Target::Replace(p)),
        }
    }
    Err(anyhow!(
        "{}: cannot write: too many levels of symbolic links",
        path.display()
    ))
}

/// Writes `bytes` to `path` as the module documentation says. Errors name `path`.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| anyhow!("{}: cannot write: {e}", path.display());
    match target_of(path)? {
        Target::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|()| out.flush())
                .map_err(|e| anyhow!("standard output: cannot write: {e}"))
        }
        Target::InPlace => std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()))
            .map_err(fail),
        Target::Replace(real) => write_atomic(&real, bytes).map_err(fail),
    }
}

/// A temporary file beside `path`, then a rename over it. A failed write (disk full) or rename
/// (the target is a folder) removes the temporary file: the target stays as it was and nothing
/// is left beside it.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into()),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

/// The bytes of an input file, or of standard input for `-`. Errors name the file.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    if is_dash(path) {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow!("standard input: cannot read: {e}"))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))
}

/// How inputs are named in messages: `-` is "standard input".
pub fn input_name(path: &Path) -> String {
    if is_dash(path) {
        "standard input".into()
    } else {
        path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn targets() {
        let dir = std::env::temp_dir().join(format!("resnet-wgpu-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(target_of(Path::new("-")).unwrap(), Target::Stdout);
        let new = dir.join("new.npy");
        assert_eq!(target_of(&new).unwrap(), Target::Replace(new.clone()));
        std::os::unix::fs::symlink("new.npy", dir.join("link")).unwrap();
        assert_eq!(
            target_of(&dir.join("link")).unwrap(),
            Target::Replace(dir.join("new.npy"))
        );
        std::fs::write(&new, b"x").unwrap();
        assert_eq!(
            target_of(&dir.join("link")).unwrap(),
            Target::Replace(std::fs::canonicalize(&new).unwrap())
        );
        assert_eq!(target_of(Path::new("/dev/null")).unwrap(), Target::InPlace);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
