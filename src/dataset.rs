//! Fashion-MNIST (training and test sets) in its original IDX format (as Debian's `dataset-fashion-mnist`
//! installs it), turned into the default model's input.

use crate::preprocess::Preprocess;
use anyhow::{Result, anyhow, bail, ensure};
use std::io::Read;
use std::path::Path;

/// The Fashion-MNIST classes, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Gray 28x28 images and their labels.
pub struct Dataset {
    /// Pixels of every image, row-major, one byte each.
    pub images: Vec<u8>,
    /// The class of each image.
    pub labels: Vec<u8>,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set has no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i` as the network input of `pre` (gray, padded, normalised, 3 channels), exactly as
    /// the reference pipeline did it: pixel / 255, zero border, (x - mean) / std.
    pub fn input(&self, i: usize, pre: &Preprocess) -> Vec<f32> {
        self.shifted_input(i, pre, [0, 0], false)
    }

    /// [`Dataset::input`] with the image moved by `shift` = (down, right) pixels inside its
    /// padded frame (what moves out is lost, what moves in is the zero border) and, with `flip`,
    /// mirrored left to right: the training augmentation.
    pub fn shifted_input(
        &self,
        i: usize,
        pre: &Preprocess,
        shift: [isize; 2],
        flip: bool,
    ) -> Vec<f32> {
        let [_, oh, ow] = pre.output_shape();
        let pad = pre.pad as isize;
        let pixels = &self.images[i * self.rows * self.cols..][..self.rows * self.cols];
        let mut out = vec![0.0f32; 3 * oh * ow];
        for y in 0..oh {
            for x in 0..ow {
                let sy = y as isize - pad - shift[0];
                let mut sx = x as isize - pad - shift[1];
                if flip {
                    sx = self.cols as isize - 1 - sx;
                }
                let inside =
                    sy >= 0 && sx >= 0 && (sy as usize) < self.rows && (sx as usize) < self.cols;
                let v = if inside {
                    pixels[sy as usize * self.cols + sx as usize] as f32 / 255.0
                } else {
                    0.0
                };
                for c in 0..3 {
                    out[(c * oh + y) * ow + x] = (v - pre.mean[c]) / pre.std[c];
                }
            }
        }
        out
    }
}

fn read_gz(path: &Path) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).map_err(|e| anyhow!("{}: cannot open: {e}", path.display()))?;
    let mut bytes = Vec::new();
    // The largest file of the set is 47 MB unpacked; refuse anything far beyond.
    flate2::read::GzDecoder::new(file)
        .take(256 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("{}: not a valid gzip file: {e}", path.display()))?;
    Ok(bytes)
}

fn header(bytes: &[u8], path: &Path, magic: u32, dims: usize) -> Result<Vec<usize>> {
    ensure!(
        bytes.len() >= 4 + 4 * dims,
        "{}: truncated IDX header",
        path.display()
    );
    let word = |k: usize| u32::from_be_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap());
    if word(0) != magic {
        bail!(
            "{}: not an IDX file of the expected kind (magic {:#x})",
            path.display(),
            word(0)
        );
    }
    Ok((1..=dims).map(|k| word(k) as usize).collect())
}

/// Loads `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` from `dir`.
pub fn load_fashion_mnist_test(dir: &Path) -> Result<Dataset> {
    load_fashion_mnist(dir, "t10k")
}

/// Loads the 60,000 training images, `train-images-idx3-ubyte.gz` and
/// `train-labels-idx1-ubyte.gz`, from `dir`.
pub fn load_fashion_mnist_train(dir: &Path) -> Result<Dataset> {
    load_fashion_mnist(dir, "train")
}

fn load_fashion_mnist(dir: &Path, split: &str) -> Result<Dataset> {
    let images_path = dir.join(format!("{split}-images-idx3-ubyte.gz"));
    let labels_path = dir.join(format!("{split}-labels-idx1-ubyte.gz"));
    for p in [&images_path, &labels_path] {
        if !p.exists() {
            bail!(
                "{}: not found (on Debian: apt-get install dataset-fashion-mnist, or pass --dir)",
                p.display()
            );
        }
    }
    let images = read_gz(&images_path)?;
    let labels = read_gz(&labels_path)?;
    let d = header(&images, &images_path, 0x0803, 3)?;
    let (n, rows, cols) = (d[0], d[1], d[2]);
    let l = header(&labels, &labels_path, 0x0801, 1)?;
    ensure!(
        l[0] == n,
        "{} has {} labels for {n} images",
        labels_path.display(),
        l[0]
    );
    ensure!(
        images.len() == 16 + n * rows * cols,
        "{}: expected {n} images of {rows}x{cols}, file size disagrees",
        images_path.display()
    );
    ensure!(
        labels.len() == 8 + n,
        "{}: file size disagrees with its header",
        labels_path.display()
    );
    Ok(Dataset {
        images: images[16..].to_vec(),
        labels: labels[8..].to_vec(),
        rows,
        cols,
    })
}
