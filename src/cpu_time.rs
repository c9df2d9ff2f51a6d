//! CPU time of this process. On CPU adapters (lavapipe, llvmpipe) the adapter's work runs on this
//! process's threads, so CPU time per forward pass says what a run cost even on a busy machine,
//! where wall time grows with the load and CPU time stays put (`bench`, benches/conv.rs).

/// CPU time used so far by every thread of this process, in seconds (Linux; `None` elsewhere).
pub fn process_cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}
