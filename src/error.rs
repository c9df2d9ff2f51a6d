//! The library's errors: one enum that callers match on (a lost device, an adapter limit, a bad
//! model file, ...), each variant with the one-line message people read.

/// What went wrong. Every message is one line that names the file, layer or adapter involved
/// and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No adapter on the requested backend(s), none matching the requested name, or a device
    /// that would not open.
    #[error("{0}")]
    NoAdapter(String),
    /// The device was lost (driver reset, GPU removed, `destroy()`); a lost device stays lost.
    #[error(
        "the GPU device on adapter '{adapter}' was lost ({reason}); create a new GpuContext and Session to continue"
    )]
    DeviceLost {
        /// The adapter's name.
        adapter: String,
        /// What the driver or wgpu said.
        reason: String,
    },
    /// Something the network needs exceeds one of the adapter's limits.
    #[error("{message}")]
    AdapterLimit {
        /// The layer (graph node) that needs it.
        layer: String,
        /// The wgpu limit, e.g. `max_storage_buffer_binding_size`.
        limit: &'static str,
        /// What the layer needs, in the limit's unit (bytes, workgroups).
        need: u64,
        /// What the adapter allows.
        allowed: u64,
        /// The whole message.
        message: String,
    },
    /// The adapter, or the chosen kernels, cannot compute in the requested precision.
    #[error("{0}")]
    PrecisionUnsupported(String),
    /// A model file (or bytes) that cannot be read as a model or built into a network.
    #[error("{file}: {reason}")]
    InvalidModel {
        /// The file name (or the name given with the bytes).
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A network graph that does not hold together (shapes that do not chain, ...).
    #[error("{0}")]
    InvalidGraph(String),
    /// Input that does not suit the network or the call: wrong size, an unreadable image or
    /// array, a bad option value.
    #[error("{0}")]
    InvalidInput(String),
    /// Something the engine cannot compute: an architecture, an op, a kernel on a layer.
    #[error("{0}")]
    Unsupported(String),
    /// The GPU refused work (a validation error, out of memory) while planning or running.
    #[error("{0}")]
    GpuRejected(String),
    /// A network output holding NaN or infinity: no class is ranked (sorting it would give an
    /// answer that looks confident).
    #[error(
        "the result is not a number: {nan} NaN and {infinite} infinite of the {len} {} (a NaN or infinite input, or a broken model); no class is ranked",
        if *probabilities { "probabilities" } else { "logits" }
    )]
    NotANumber {
        /// NaN values in the row.
        nan: usize,
        /// Infinite values in the row.
        infinite: usize,
        /// Values in the row.
        len: usize,
        /// Whether the row was probabilities (a final Softmax) rather than logits.
        probabilities: bool,
    },
    /// A file that could not be read or written. (The operating system's error is part of the
    /// message, not a `source()`, so that printing the error chain does not say it twice.)
    #[error("{path}: cannot {action}: {cause}")]
    Io {
        /// The file or folder.
        path: String,
        /// "read", "write", "list", ...
        action: &'static str,
        /// The operating system's error.
        cause: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::InvalidModel`] for `file`, whatever the reason's type.
    /// A reason that already starts with the file name (as the loaders' messages do) keeps it
    /// only once.
    pub fn invalid_model(file: &str, reason: impl std::fmt::Display) -> Self {
        let text = one_line(&format!("{reason:#}"));
        let reason = match text.strip_prefix(file).and_then(|r| r.strip_prefix(": ")) {
            Some(rest) => rest.to_string(),
            None => text,
        };
        Error::InvalidModel {
            file: file.to_string(),
            reason,
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl std::fmt::Display, action: &'static str, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            action,
            cause,
        }
    }
}

impl Error {
    /// The variant's name (`"DeviceLost"`, `"AdapterLimit"`, ...), for callers across a language
    /// boundary (the browser page gets it as the JS error's `name`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NoAdapter(_) => "NoAdapter",
            Error::DeviceLost { .. } => "DeviceLost",
            Error::AdapterLimit { .. } => "AdapterLimit",
            Error::PrecisionUnsupported(_) => "PrecisionUnsupported",
            Error::InvalidModel { .. } => "InvalidModel",
            Error::InvalidGraph(_) => "InvalidGraph",
            Error::InvalidInput(_) => "InvalidInput",
            Error::Unsupported(_) => "Unsupported",
            Error::GpuRejected(_) => "GpuRejected",
            Error::NotANumber { .. } => "NotANumber",
            Error::Io { .. } => "Io",
        }
    }

    /// The same error, its message saying which layer it is about (unless it already does).
    pub fn in_layer(self, layer: &str) -> Self {
        let say = |m: String| {
            if m.contains(&format!("layer '{layer}")) {
                m
            } else {
                format!("layer '{layer}': {m}")
            }
        };
        match self {
            Error::Unsupported(m) => Error::Unsupported(say(m)),
            Error::InvalidGraph(m) => Error::InvalidGraph(say(m)),
            Error::InvalidInput(m) => Error::InvalidInput(say(m)),
            Error::GpuRejected(m) => Error::GpuRejected(say(m)),
            Error::AdapterLimit {
                layer: _,
                limit,
                need,
                allowed,
                message,
            } => Error::AdapterLimit {
                layer: layer.to_string(),
                limit,
                need,
                allowed,
                message: say(message),
            },
            other => other,
        }
    }
}

impl Error {
    /// The same error about image `i` of a batch (its message says which).
    pub fn in_image(self, i: usize) -> Self {
        match self {
            Error::NotANumber { .. } => self,
            other => Error::InvalidInput(format!("image {i}: {other}")),
        }
    }
}

/// Messages stay one line, whatever an underlying library put in them.
pub(crate) fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

/// `return Err(Error::$kind(format!(...)))`: the typed form of anyhow's `bail!`.
macro_rules! fail {
    ($kind:ident, $($arg:tt)*) => {
        return Err($crate::error::Error::$kind(format!($($arg)*)))
    };
}

/// [`fail!`] unless `cond` holds: the typed form of anyhow's `ensure!`.
macro_rules! require {
    ($cond:expr, $kind:ident, $($arg:tt)*) => {
        if !$cond {
            $crate::error::fail!($kind, $($arg)*);
        }
    };
}

pub(crate) use {fail, require};
