//! Activation memory planning by liveness: values whose lifetimes do not overlap share a buffer
//! ("slot"). A node's output never shares a slot with its own inputs (WebGPU forbids binding one
//! buffer as both read-only and writable in a dispatch). Nodes may also ask for temporaries
//! (Winograd's transformed input and products) that live only while the node runs: they take
//! free slots too, distinct from the node's inputs and output.

use super::{Graph, ValueId};

/// Which buffer ("slot") holds each value and temporary, and how big each slot is.
pub struct MemoryPlan {
    /// The slot holding each value.
    pub slot_of: Vec<usize>,
    /// The slots of each node's temporaries (empty for most nodes).
    pub temp_slots: Vec<Vec<usize>>,
    /// Bytes of each slot.
    pub slot_bytes: Vec<u64>,
}

impl MemoryPlan {
    /// Bytes of all slots together: the activation memory of a pass.
    pub fn total_bytes(&self) -> u64 {
        self.slot_bytes.iter().sum()
    }
}

/// Plans slots for a batch of `batch` images. `pinned` values (the output, read-back taps) keep
/// their slot to the end. `temps[i]` lists the bytes of node i's temporaries (may be shorter than
/// the graph: missing entries have none).
pub fn plan_memory(g: &Graph, batch: usize, pinned: &[ValueId], temps: &[Vec<u64>]) -> MemoryPlan {
    let n = g.nodes.len();
    let mut last_use = vec![0usize; n];
    for (i, node) in g.nodes.iter().enumerate() {
        for &v in &node.inputs {
            last_use[v] = i;
        }
    }
    for &v in pinned {
        last_use[v] = usize::MAX;
    }
    // Activations are channel-blocked on the GPU (channels rounded up to 4).
    let bytes = |v: ValueId| (batch * crate::layout::blocked_len(g.shape(v)) * 4) as u64;
    let mut slot_of = vec![usize::MAX; n];
    let mut temp_slots = vec![Vec::new(); n];
    let mut slot_bytes: Vec<u64> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    // Best fit: the smallest free slot that is big enough, else grow the largest free one.
    let take = |need: u64, free: &mut Vec<usize>, slot_bytes: &mut Vec<u64>| {
        let fit = free
            .iter()
            .enumerate()
            .filter(|&(_, &s)| slot_bytes[s] >= need)
            .min_by_key(|&(_, &s)| slot_bytes[s])
            .or_else(|| free.iter().enumerate().max_by_key(|&(_, &s)| slot_bytes[s]))
            .map(|(k, _)| k);
        let slot = match fit {
            Some(k) => free.swap_remove(k),
            None => {
                slot_bytes.push(0);
                slot_bytes.len() - 1
            }
        };
        slot_bytes[slot] = slot_bytes[slot].max(need);
        slot
    };
    for (i, node) in g.nodes.iter().enumerate() {
        let slot = take(bytes(i), &mut free, &mut slot_bytes);
        slot_of[i] = slot;
        for &t in temps.get(i).map_or(&[][..], |t| t.as_slice()) {
            temp_slots[i].push(take(t, &mut free, &mut slot_bytes));
        }
        free.extend(temp_slots[i].iter().copied());
        let mut inputs = node.inputs.clone();
        inputs.sort_unstable();
        inputs.dedup();
        for v in inputs {
            if last_use[v] == i {
                free.push(slot_of[v]);
            }
        }
        // A value nobody reads (a dead branch) frees its slot at once.
        if last_use[i] == 0 && i > 0 {
            free.push(slot);
        }
    }
    MemoryPlan {
        slot_of,
        temp_slots,
        slot_bytes,
    }
}
