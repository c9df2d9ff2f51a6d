//! The tuning cache: the kernel chosen for each (adapter, driver, engine version, layer shape,
//! precision), so that a second start measures nothing.
//!
//! Natively it is a JSON file, `tune.json` in `$RESNET_WGPU_CACHE_DIR`, else in the user's cache
//! directory (`~/.cache/resnet-wgpu` on Linux, `~/Library/Caches/resnet-wgpu` on macOS,
//! `%LOCALAPPDATA%\resnet-wgpu` on Windows), read on first use and rewritten (merged with what
//! other processes wrote meanwhile, replaced atomically) after each tuning. In the browser it
//! lives in memory; the page stores [`export_json`] in its own storage and hands it back with
//! [`import_json`]. A cache that cannot be read or written costs a warning, never an error: it
//! only saves time.

use crate::gpu::GpuContext;
use crate::plan::Tune;
use crate::plan::conv::ConvShape;
use crate::precision::Precision;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One cached choice.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// The algorithm, as `ConvAlgo::describe` names it.
    pub algo: String,
    /// The mode that measured it: `quick` or `full` (a quick result does not answer a full
    /// tuning).
    pub mode: String,
    /// Its measured seconds per run.
    pub seconds: f64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    entries: BTreeMap<String, Entry>,
}

const VERSION: u32 = 1;

struct State {
    entries: BTreeMap<String, Entry>,
    /// The file behind the cache (natively), once resolved.
    #[cfg(not(target_arch = "wasm32"))]
    file: Option<std::path::PathBuf>,
    loaded: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    entries: BTreeMap::new(),
    #[cfg(not(target_arch = "wasm32"))]
    file: None,
    loaded: false,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The key of one layer shape on one adapter.
pub fn key(ctx: &GpuContext, s: &ConvShape, precision: Precision) -> String {
    let i = &ctx.info;
    format!(
        "{} | {:?} | {} {} | engine {} | {} | in {}x{:?} k{:?} s{:?} p{:?} out {:?} batch {}",
        i.name,
        i.backend,
        i.driver,
        i.driver_info,
        env!("CARGO_PKG_VERSION"),
        precision.name(),
        s.in_c,
        s.input,
        s.kernel,
        s.stride,
        s.pad,
        s.output,
        s.batch
    )
}

/// The cached algorithm name for `key`, if one measured in a mode at least as thorough as `mode`.
pub fn lookup(key: &str, mode: Tune) -> Option<String> {
    let mut st = state();
    load(&mut st);
    let e = st.entries.get(key)?;
    (mode != Tune::Full || e.mode == Tune::Full.name()).then(|| e.algo.clone())
}

/// Remembers a choice (in memory; [`save`] writes it).
pub fn store(key: &str, mode: Tune, algo: &str, seconds: f64) {
    let mut st = state();
    load(&mut st);
    st.entries.insert(
        key.to_string(),
        Entry {
            algo: algo.to_string(),
            mode: mode.name().to_string(),
            seconds,
        },
    );
}

/// Every entry as JSON (what the browser keeps in its storage).
pub fn export_json() -> String {
    let mut st = state();
    load(&mut st);
    let file = CacheFile {
        version: VERSION,
        entries: st.entries.clone(),
    };
    serde_json::to_string(&file).expect("the cache serialises")
}

/// Adds the entries of a JSON export; a malformed or older export is ignored with a warning.
pub fn import_json(json: &str) {
    let mut st = state();
    load(&mut st);
    match serde_json::from_str::<CacheFile>(json) {
        Ok(f) if f.version == VERSION => st.entries.extend(f.entries),
        Ok(_) => log::warn!("tuning cache: an older format, ignored"),
        Err(e) => log::warn!("tuning cache: not a cache export ({e}), ignored"),
    }
}

/// Forgets every entry in memory (the file is left alone).
pub fn clear() {
    let mut st = state();
    st.entries.clear();
    st.loaded = true;
}

#[cfg(target_arch = "wasm32")]
fn load(st: &mut State) {
    st.loaded = true;
}

/// Writes the cache file (natively; a no-op in the browser).
#[cfg(target_arch = "wasm32")]
pub fn save() {}

/// The cache file: `$RESNET_WGPU_CACHE_DIR/tune.json`, else in the user's cache directory.
#[cfg(not(target_arch = "wasm32"))]
pub fn default_path() -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("RESNET_WGPU_CACHE_DIR") {
        Some(d) if !d.is_empty() => std::path::PathBuf::from(d),
        _ => dirs::cache_dir()?.join("resnet-wgpu"),
    };
    Some(dir.join("tune.json"))
}

/// Uses `path` as the cache file from now on (its entries are read; those in memory stay).
#[cfg(not(target_arch = "wasm32"))]
pub fn use_file(path: std::path::PathBuf) {
    let mut st = state();
    st.file = Some(path);
    st.loaded = false;
    load(&mut st);
}

/// The file in use, if any.
#[cfg(not(target_arch = "wasm32"))]
pub fn path() -> Option<std::path::PathBuf> {
    let mut st = state();
    load(&mut st);
    st.file.clone()
}

#[cfg(not(target_arch = "wasm32"))]
fn read_file(path: &std::path::Path) -> BTreeMap<String, Entry> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    match serde_json::from_str::<CacheFile>(&text) {
        Ok(f) if f.version == VERSION => f.entries,
        _ => {
            log::warn!(
                "tuning cache {}: unreadable or an older format, ignored",
                path.display()
            );
            BTreeMap::new()
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn load(st: &mut State) {
    if st.loaded {
        return;
    }
    st.loaded = true;
    if st.file.is_none() {
        st.file = default_path();
    }
    if let Some(path) = &st.file {
        let on_disk = read_file(path);
        for (k, v) in on_disk {
            st.entries.entry(k).or_insert(v);
        }
    }
}

/// Writes the cache file, merged with what is on disk now (another process may have tuned
/// meanwhile), through a temporary file renamed over it.
#[cfg(not(target_arch = "wasm32"))]
pub fn save() {
    let mut st = state();
    load(&mut st);
    let Some(path) = st.file.clone() else {
        return;
    };
    let mut entries = read_file(&path);
    entries.extend(st.entries.clone());
    let file = CacheFile {
        version: VERSION,
        entries,
    };
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&file)?)?;
        std::fs::rename(&tmp, &path)
    };
    if let Err(e) = write() {
        log::warn!("tuning cache {}: cannot write it: {e}", path.display());
    }
}
