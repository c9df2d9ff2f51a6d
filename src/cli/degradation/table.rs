//! DIR/degradation.md: the final errors of every run, one row a net.

use super::runlog::RunLog;
use std::fmt::Write;

/// A Markdown table: net, depth, steps, final training and test error (%), wall time.
pub fn markdown(runs: &[RunLog]) -> String {
    let mut s = String::from(
        "| net | depth | steps | final train error (%) | final test error (%) | wall time (s) |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    let pct = |e: Option<f64>| e.map_or("-".to_string(), |e| format!("{:.2}", 100.0 * e));
    for r in runs {
        let steps = if r.done {
            r.steps.to_string()
        } else {
            format!("{} (unfinished)", r.steps)
        };
        writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.0} |",
            r.name,
            r.depth,
            steps,
            pct(r.final_train()),
            pct(r.final_test()),
            r.seconds
        )
        .expect("writing to a String");
    }
    s
}
