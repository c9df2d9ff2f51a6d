//! Classifying a stream of images (a folder of thousands of photos) with bounded memory: one
//! thread decodes and preprocesses while the GPU runs the previous batch, at most a few batches
//! ahead, and every result is handed back, in input order, as soon as its batch has run.
//!
//! Why: decoding a whole folder first held every decoded image at once (40 phone photos of
//! 4000x3000 took 1.5 GB, 500 would need ~18 GB) and printed nothing until the end. Here an image
//! is preprocessed (to 3x224x224 floats at most for ImageNet nets, 600 KB) right after decoding
//! and its decoded pixels are dropped, so memory is one decoded image plus
//! `batch x (ahead + 1) + 1` preprocessed ones, whatever the number of images.

#[cfg(not(target_arch = "wasm32"))]
use super::{Classifier, Prediction};
#[cfg(not(target_arch = "wasm32"))]
use anyhow::{Result, anyhow};
#[cfg(not(target_arch = "wasm32"))]
use image::DynamicImage;

/// How [`Classifier::classify_stream`] batches.
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    /// Images per forward pass (at least 1).
    pub batch: usize,
    /// Whole batches the decoder may prepare ahead of the one the GPU is running (at least 1).
    pub ahead: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            batch: 16,
            ahead: 2,
        }
    }
}

/// What a stream did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Images handed back (classified or failed).
    pub images: usize,
    /// Of those, how many failed (unreadable, or a result that is not a number).
    pub failed: usize,
    /// The most images ever decoded and preprocessed but not yet handed back: the memory bound
    /// (at most `batch x (ahead + 1) + 1`).
    pub max_pending: usize,
}

#[cfg(not(target_arch = "wasm32"))]
impl Classifier {
    /// Classifies `sources` in order: `decode` turns each into an image (on a decoder thread),
    /// and `on_result` gets each source with its top `k` or its error as soon as its batch has
    /// run. An error from `on_result` (say, stdout closed) stops the stream and is returned; so
    /// is a GPU failure. Unreadable images and results that are not a number are not errors of
    /// the stream: they reach `on_result` and are counted in [`StreamStats::failed`].
    pub fn classify_stream<S, I, D, F>(
        &self,
        sources: I,
        decode: D,
        k: usize,
        opts: StreamOptions,
        mut on_result: F,
    ) -> Result<StreamStats>
    where
        S: Send,
        I: IntoIterator<Item = S>,
        I::IntoIter: Send,
        D: Fn(&S) -> Result<DynamicImage> + Sync,
        F: FnMut(S, Result<Vec<Prediction>>) -> Result<()>,
    {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let batch = opts.batch.max(1);
        let (tx, rx) =
            std::sync::mpsc::sync_channel::<(S, Result<Vec<f32>>)>(batch * opts.ahead.max(1));
        let decoded = AtomicUsize::new(0);
        let handed_back = AtomicUsize::new(0);
        let max_pending = AtomicUsize::new(0);
        let preprocess = self.preprocess.clone();
        let sources = sources.into_iter();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                // Owned by this thread, so the channel closes when decoding ends.
                let tx = tx;
                for source in sources {
                    let input = decode(&source).map(|img| preprocess.apply(&img));
                    let now = decoded.fetch_add(1, Ordering::SeqCst) + 1;
                    max_pending
                        .fetch_max(now - handed_back.load(Ordering::SeqCst), Ordering::SeqCst);
                    if tx.send((source, input)).is_err() {
                        return; // the consumer stopped
                    }
                }
            });
            let mut stats = StreamStats::default();
            let mut rx = rx.into_iter().peekable();
            while rx.peek().is_some() {
                let items: Vec<(S, Result<Vec<f32>>)> = rx.by_ref().take(batch).collect();
                let input: Vec<f32> = items
                    .iter()
                    .filter_map(|(_, r)| r.as_ref().ok())
                    .flatten()
                    .copied()
                    .collect();
                let outputs = if input.is_empty() {
                    Vec::new()
                } else {
                    self.session.run(&input)?.logits
                };
                let mut rows = outputs.chunks(self.labels.len());
                for (source, input) in items {
                    let result = input.and_then(|_| {
                        let row = rows
                            .next()
                            .ok_or_else(|| anyhow!("the session returned too few rows"))?;
                        Ok(self.top(row, k)?)
                    });
                    stats.images += 1;
                    stats.failed += usize::from(result.is_err());
                    handed_back.fetch_add(1, Ordering::SeqCst);
                    on_result(source, result)?;
                }
            }
            stats.max_pending = max_pending.load(Ordering::SeqCst);
            Ok(stats)
        })
    }
}
