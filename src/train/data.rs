//! Training batches from a dataset: a fresh shuffle every epoch and the augmentation (a random
//! shift inside the padded frame and a random horizontal flip), all drawn from the run's seed and
//! the epoch and iteration numbers alone, so a resumed run sees exactly the batches it would have.

use crate::dataset::Dataset;
use crate::preprocess::Preprocess;
use crate::tensor::SplitMix64;

/// Where batches come from and how they are augmented.
pub struct BatchSource<'a> {
    /// The training set.
    pub data: &'a Dataset,
    /// How an image becomes the network's input.
    pub pre: Preprocess,
    /// Images per batch.
    pub batch: usize,
    /// The largest shift in pixels (the paper's CIFAR recipe pads by 4 and crops: 4).
    pub max_shift: usize,
    /// Mirror half the images left to right.
    pub flip: bool,
    /// The run's seed.
    pub seed: u64,
}

impl BatchSource<'_> {
    /// Whole batches per epoch (the remainder of a shuffle is left out, as PyTorch's
    /// `drop_last` does, so every step has the same batch size).
    pub fn batches_per_epoch(&self) -> usize {
        self.data.len() / self.batch
    }

    /// The image order of `epoch`: a Fisher-Yates shuffle seeded by the seed and the epoch.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut rng = SplitMix64(self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut order: Vec<usize> = (0..self.data.len()).collect();
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order
    }

    /// Batch `index` of an epoch whose order is `order`: the input (NCHW) and the labels.
    pub fn batch(&self, order: &[usize], index: usize, step: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = SplitMix64(self.seed.rotate_left(17) ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let mut input = Vec::new();
        let mut labels = Vec::with_capacity(self.batch);
        let span = 2 * self.max_shift as u64 + 1;
        for &i in &order[index * self.batch..(index + 1) * self.batch] {
            let dy = (rng.next_u64() % span) as isize - self.max_shift as isize;
            let dx = (rng.next_u64() % span) as isize - self.max_shift as isize;
            let flip = self.flip && rng.next_u64() & 1 == 1;
            input.extend(self.data.shifted_input(i, &self.pre, [dy, dx], flip));
            labels.push(self.data.labels[i] as usize);
        }
        (input, labels)
    }
}
