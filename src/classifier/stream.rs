//! Classifying a stream of images (a folder of thousands of photos) with bounded memory: a few
//! threads decode and preprocess while the GPU runs the previous batch, at most a few batches
//! ahead, and every result is handed back, in input order, as soon as its batch has run.
//!
//! Why: decoding a whole folder first held every decoded image at once (40 phone photos of
//! 4000x3000 took 1.5 GB, 500 would need ~18 GB) and printed nothing until the end. Here an image
//! is preprocessed (to 3x224x224 floats at most for ImageNet nets, 600 KB) right after decoding
//! and its decoded pixels are dropped, so memory is one decoded image per decoder plus
//! `batch x (ahead + 1) + decoders` preprocessed ones, whatever the number of images.
//!
//! Why several decoders: decoding a PNG costs about as much as classifying it with a small net,
//! so one decoder thread left the GPU waiting. Decoders take sources in order but may finish out
//! of order; results are put back in order before they are batched.

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
    /// Whole batches the decoders may prepare ahead of the one the GPU is running (at least 1).
    pub ahead: usize,
    /// Threads that decode and preprocess images (at least 1).
    pub decoders: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            batch: 16,
            ahead: 2,
            decoders: default_decoders(),
        }
    }
}

/// One decoder per core, leaving one for the thread that drives the GPU, and never more than 8:
/// past that the GPU, not decoding, is what a folder waits for.
pub fn default_decoders() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).clamp(1, 8)
}

/// What a stream did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Images handed back (classified or failed).
    pub images: usize,
    /// Of those, how many failed (unreadable, or a result that is not a number).
    pub failed: usize,
    /// The most images ever decoded and preprocessed but not yet handed back: the memory bound
    /// (at most `batch x (ahead + 1) + decoders`).
    pub max_pending: usize,
}

/// The sources not yet taken by a decoder, and how far decoders may run ahead.
#[cfg(not(target_arch = "wasm32"))]
struct Feed<I> {
    sources: I,
    /// Index of the next source to hand out.
    next: usize,
    /// Decoders may take source `i` only while `i < limit`.
    limit: usize,
    /// The consumer is done (finished, or stopped by an error): decoders take nothing more.
    stopped: bool,
}

#[cfg(not(target_arch = "wasm32"))]
impl Classifier {
    /// Classifies `sources` in order: `decode` turns each into an image (on decoder threads),
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
        use std::collections::BTreeMap;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Condvar, Mutex};
        let batch = opts.batch.max(1);
        let decoders = opts.decoders.max(1);
        // Sources taken by decoders but not yet put into a batch: the ones ahead of the GPU.
        let window = batch * opts.ahead.max(1) + decoders - 1;
        let (tx, rx) = std::sync::mpsc::channel::<(usize, S, Result<Vec<f32>>)>();
        let feed = Mutex::new(Feed {
            sources: sources.into_iter(),
            next: 0,
            limit: window,
            stopped: false,
        });
        let room = Condvar::new();
        let decoded = AtomicUsize::new(0);
        let handed_back = AtomicUsize::new(0);
        let max_pending = AtomicUsize::new(0);
        let preprocess = &self.preprocess;
        // Lets decoders run up to `limit`, or (with `None`) stops them, and wakes those waiting.
        let release = |limit: Option<usize>| {
            let mut f = feed.lock().unwrap_or_else(|e| e.into_inner());
            match limit {
                Some(limit) => f.limit = f.limit.max(limit),
                None => f.stopped = true,
            }
            room.notify_all();
        };
        std::thread::scope(|scope| {
            for _ in 0..decoders {
                let tx = tx.clone();
                let (feed, room, decode) = (&feed, &room, &decode);
                let (decoded, handed_back, max_pending) = (&decoded, &handed_back, &max_pending);
                scope.spawn(move || {
                    loop {
                        let (index, source) = {
                            let mut f = feed.lock().unwrap_or_else(|e| e.into_inner());
                            while f.next >= f.limit && !f.stopped {
                                f = room.wait(f).unwrap_or_else(|e| e.into_inner());
                            }
                            if f.stopped {
                                return;
                            }
                            let Some(source) = f.sources.next() else {
                                return;
                            };
                            f.next += 1;
                            (f.next - 1, source)
                        };
                        let input = decode(&source).map(|img| preprocess.apply(&img));
                        let now = decoded.fetch_add(1, Ordering::SeqCst) + 1;
                        max_pending
                            .fetch_max(now - handed_back.load(Ordering::SeqCst), Ordering::SeqCst);
                        if tx.send((index, source, input)).is_err() {
                            return; // the consumer stopped
                        }
                    }
                });
            }
            // Only decoders hold senders now, so the channel closes when the last one ends.
            drop(tx);
            let result = (|| -> Result<StreamStats> {
                let mut stats = StreamStats::default();
                let mut early: BTreeMap<usize, (S, Result<Vec<f32>>)> = BTreeMap::new();
                let mut wanted = 0usize;
                loop {
                    let mut items = Vec::with_capacity(batch);
                    while items.len() < batch {
                        if let Some(item) = early.remove(&wanted) {
                            items.push(item);
                            wanted += 1;
                            continue;
                        }
                        match rx.recv() {
                            Ok((index, source, input)) => {
                                early.insert(index, (source, input));
                            }
                            Err(_) => break, // every decoder is done
                        }
                    }
                    if items.is_empty() {
                        break;
                    }
                    release(Some(wanted + window));
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
            })();
            // On an early error the decoders must not stay asleep waiting for room.
            release(None);
            drop(rx);
            result
        })
    }
}
