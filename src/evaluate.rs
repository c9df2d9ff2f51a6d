//! Top-1 predictions of a session over a labelled test set, and their accuracy: what `eval`
//! prints and what the portability suite's accuracy rule compares with the reference.

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::preprocess::Preprocess;
use crate::scores::top_k;
use crate::session::Session;

/// The class predicted for each of the first `n` images of `data` (at most all of them), run in
/// batches of the session's batch size; `on_batch` sees how many images each batch held.
/// Non-finite logits are an error naming the image: a NaN must never count as a class.
pub async fn top1_predictions(
    session: &Session,
    data: &Dataset,
    pre: &Preprocess,
    n: usize,
    on_batch: &mut dyn FnMut(usize),
) -> Result<Vec<usize>> {
    let n = n.min(data.len());
    let classes = session.output_len();
    let batch = session.batch.max(1);
    let mut predictions = Vec::with_capacity(n);
    for first in (0..n).step_by(batch) {
        let count = batch.min(n - first);
        let input: Vec<f32> = (first..first + count)
            .flat_map(|i| data.input(i, pre))
            .collect();
        let logits = session.run_async(&input).await?.logits;
        for (i, row) in logits.chunks(classes).enumerate() {
            if row.iter().any(|v| !v.is_finite()) {
                return Err(Error::InvalidInput(format!(
                    "test image {}: the result is not a number (NaN or infinite logits); no accuracy is computed",
                    first + i
                )));
            }
            predictions.push(top_k(row, 1)[0]);
        }
        on_batch(count);
    }
    Ok(predictions)
}

/// The fraction of `predictions` equal to `labels` (index by index; 0 for none).
pub fn top1_accuracy(predictions: &[usize], labels: &[u8]) -> f64 {
    let correct = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    correct as f64 / predictions.len().max(1) as f64
}
