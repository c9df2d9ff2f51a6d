//! The order in which to import the nodes: every value made before it is read, only what the
//! output needs; values produced twice, inputs nothing produces and cycles are refused.

use super::node::NodeRef;
use super::proto::GraphProto;
use anyhow::{Result, bail, ensure};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The nodes the output depends on, in an order where every value is made before it is read.
/// Refuses values produced twice, inputs nothing produces, and cycles.
pub(super) fn order(
    gp: &GraphProto,
    available: &HashSet<&str>,
    output: &str,
) -> Result<Vec<usize>> {
    let label = |i: usize| {
        let n = NodeRef {
            proto: &gp.node[i],
            opset: 0,
        };
        format!("node '{}' ({})", n.name(), n.op())
    };
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in gp.node.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            ensure!(
                !available.contains(o.as_str()) && producer.insert(o, i).is_none(),
                "{}: value '{o}' is produced more than once",
                label(i)
            );
        }
    }
    for (i, n) in gp.node.iter().enumerate() {
        for x in n.input.iter().filter(|x| !x.is_empty()) {
            ensure!(
                available.contains(x.as_str()) || producer.contains_key(x.as_str()),
                "{}: input '{x}' is not produced by any node, initializer or graph input",
                label(i)
            );
        }
    }
    ensure!(
        available.contains(output) || producer.contains_key(output),
        "the graph output '{output}' is not produced by any node"
    );
    // Kahn's algorithm, taking the lowest-numbered ready node first so that a file already in
    // order keeps its order.
    let deps: Vec<BTreeSet<usize>> = gp
        .node
        .iter()
        .map(|n| {
            n.input
                .iter()
                .filter_map(|x| producer.get(x.as_str()).copied())
                .collect()
        })
        .collect();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); gp.node.len()];
    for (i, d) in deps.iter().enumerate() {
        for &p in d {
            readers[p].push(i);
        }
    }
    let mut waiting: Vec<usize> = deps.iter().map(|d| d.len()).collect();
    let mut ready: BTreeSet<usize> = (0..gp.node.len()).filter(|&i| waiting[i] == 0).collect();
    let mut sorted = Vec::with_capacity(gp.node.len());
    while let Some(i) = ready.pop_first() {
        sorted.push(i);
        for &r in &readers[i] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.insert(r);
            }
        }
    }
    if sorted.len() < gp.node.len() {
        let stuck = (0..gp.node.len()).find(|&i| waiting[i] > 0).unwrap();
        bail!("{} is part of a cycle", label(stuck));
    }
    // Keep only what the output needs.
    let mut needed = vec![false; gp.node.len()];
    let mut stack: Vec<usize> = producer.get(output).copied().into_iter().collect();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut needed[i], true) {
            stack.extend(deps[i].iter().copied());
        }
    }
    Ok(sorted.into_iter().filter(|&i| needed[i]).collect())
}
