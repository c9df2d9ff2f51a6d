//! Where the command line writes its output files (`run --output`, `eval --predictions`,
//! `portability --json / --markdown`, `classify --output`) and reads `-` as standard input.
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
    let mut out = OutputFile::create(path)?;
    out.write(bytes)?;
    out.commit()
}

/// An output written piece by piece (a folder's results, line by line) and, for a regular file,
/// only put in place by [`OutputFile::commit`]: dropped before that (an error, Ctrl-C unwinding),
/// its temporary file is removed and the target stays as it was.
pub struct OutputFile {
    path: PathBuf,
    out: Box<dyn Write>,
    /// For a regular file: (temporary file, the file it replaces on commit).
    rename: Option<(PathBuf, PathBuf)>,
}

impl OutputFile {
    /// Opens `path` for writing as the module documentation says. Errors name `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let fail = |e: std::io::Error| anyhow!("{}: cannot write: {e}", path.display());
        let (out, rename): (Box<dyn Write>, _) = match target_of(path)? {
            Target::Stdout => (Box::new(std::io::stdout()), None),
            Target::InPlace => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(fail)?;
                (Box::new(file), None)
            }
            Target::Replace(real) => {
                let tmp = temporary_beside(&real);
                let file = std::fs::File::create(&tmp).map_err(fail)?;
                (Box::new(std::io::BufWriter::new(file)), Some((tmp, real)))
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            out,
            rename,
        })
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| self.error(e))
    }

    /// Flushes, and puts a regular file in place. A failed rename (the target is a folder)
    /// removes the temporary file.
    pub fn commit(mut self) -> Result<()> {
        self.out.flush().map_err(|e| self.error(e))?;
        if let Some((tmp, real)) = self.rename.take() {
            // Closed before the rename, so nothing is written after it.
            self.out = Box::new(std::io::sink());
            std::fs::rename(&tmp, &real).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                self.error(e)
            })?;
        }
        Ok(())
    }

    fn error(&self, e: std::io::Error) -> anyhow::Error {
        if self.rename.is_none() && is_dash(&self.path) {
            anyhow!("standard output: cannot write: {e}")
        } else {
            anyhow!("{}: cannot write: {e}", self.path.display())
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some((tmp, _)) = self.rename.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Where the temporary file for `path` goes: beside it (a rename cannot cross file systems),
/// hidden, and named after this process so two runs do not share one.
fn temporary_beside(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into()),
        std::process::id()
    ))
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
