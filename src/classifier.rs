//! The high-level API: a model on a GPU that turns images into labelled predictions.
//!
//! Only models whose output is one vector of class scores per image are classifiers: a feature
//! map is refused, and a network that ends in Softmax has its output reported as probabilities
//! (no logits). A row with a NaN or infinite value is not ranked: `top` says the result is not a
//! number (sorting NaNs would put them in index order and give a confident-looking answer).

mod stream;

pub use stream::{StreamOptions, StreamStats, default_decoders};

use crate::error::{Error, Result, fail};
use crate::gpu::GpuContext;
use crate::graph::{Graph, Op};
use crate::model::Model;
use crate::model::default::imagenet_classes;
use crate::preprocess::Preprocess;
use crate::scores::{softmax, top_k};
use crate::session::{Session, SessionOptions};
use image::DynamicImage;
use serde::Serialize;
use std::sync::Arc;

/// One class of one image's top-k.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The class index (row of the output).
    pub index: usize,
    /// Its name.
    pub label: String,
    /// Softmax probability (or the model's own, after a final Softmax).
    pub probability: f32,
    /// The raw score; `None` when the model's output is already probabilities (a final Softmax).
    pub logit: Option<f32>,
}

/// What the network's output values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scores {
    /// Raw scores: the classifier applies softmax.
    Logits,
    /// The network ends in Softmax: its output is reported as it is.
    Probabilities,
}

impl Scores {
    /// Checks that `graph` is a classifier (one vector per image: C x 1 x 1) and says whether it
    /// ends in Softmax.
    pub fn of(graph: &Graph, source: &str) -> Result<Self> {
        let [c, h, w] = graph.output_shape();
        if h != 1 || w != 1 {
            fail!(
                Unsupported,
                "{source}: the model's output is a {c}x{h}x{w} feature map per image, not a vector of class scores; classify needs a classifier (use `run` for raw outputs)"
            );
        }
        Ok(match graph.nodes[graph.output].op {
            Op::Softmax => Self::Probabilities,
            _ => Self::Logits,
        })
    }
}

/// A model planned on a GPU with its preprocessing and class names.
pub struct Classifier {
    session: Session,
    preprocess: Preprocess,
    labels: Vec<String>,
    scores: Scores,
}

impl Classifier {
    /// Plans `model` on `ctx` for up to `batch` images per forward pass. Class names come from the
    /// model's metadata, ImageNet's for 1000-class models, else "class N".
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(ctx: Arc<GpuContext>, model: Model, batch: usize) -> Result<Self> {
        pollster::block_on(Self::new_async(ctx, model, batch))
    }

    /// [`Classifier::new`] for the browser (awaits the GPU's verdict on the pipelines).
    pub async fn new_async(ctx: Arc<GpuContext>, model: Model, batch: usize) -> Result<Self> {
        let preprocess = Preprocess::for_model(&model);
        Self::with_preprocess_async(ctx, model, batch, preprocess).await
    }

    /// Like [`Classifier::new`] with explicit preprocessing (for files that do not describe it).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_preprocess(
        ctx: Arc<GpuContext>,
        model: Model,
        batch: usize,
        preprocess: Preprocess,
    ) -> Result<Self> {
        pollster::block_on(Self::with_preprocess_async(ctx, model, batch, preprocess))
    }

    /// [`Classifier::with_preprocess`] for the browser.
    pub async fn with_preprocess_async(
        ctx: Arc<GpuContext>,
        model: Model,
        batch: usize,
        preprocess: Preprocess,
    ) -> Result<Self> {
        let options = SessionOptions {
            batch: batch.max(1),
            ..Default::default()
        };
        Self::with_options_async(ctx, model, preprocess, &options).await
    }

    /// Like [`Classifier::with_preprocess`] with every session option (batch, precision, ...).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_options(
        ctx: Arc<GpuContext>,
        model: Model,
        preprocess: Preprocess,
        options: &SessionOptions,
    ) -> Result<Self> {
        pollster::block_on(Self::with_options_async(ctx, model, preprocess, options))
    }

    /// [`Classifier::with_options`] for the browser.
    pub async fn with_options_async(
        ctx: Arc<GpuContext>,
        model: Model,
        preprocess: Preprocess,
        options: &SessionOptions,
    ) -> Result<Self> {
        let names = model.class_names();
        let source = model.source.clone();
        let graph = model.into_graph_for(preprocess.output_shape())?;
        let scores = Scores::of(&graph, &source)?;
        let classes = graph.output_shape()[0];
        let labels = match names {
            Some(names) if names.len() == classes => names,
            _ if classes == 1000 => imagenet_classes(),
            _ => (0..classes).map(|i| format!("class {i}")).collect(),
        };
        let options = SessionOptions {
            batch: options.batch.max(1),
            ..options.clone()
        };
        let session = Session::new_async(ctx, graph, &options).await?;
        Ok(Self {
            session,
            preprocess,
            labels,
            scores,
        })
    }

    /// Replaces the class names (e.g. from a `--labels` file).
    pub fn set_labels(&mut self, labels: Vec<String>) -> Result<()> {
        if labels.len() != self.labels.len() {
            fail!(
                InvalidInput,
                "{} labels given for a model with {} classes",
                labels.len(),
                self.labels.len()
            );
        }
        self.labels = labels;
        Ok(())
    }

    /// The class names, by index.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// How images become the network's input.
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// The session that runs the network.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Whether the model's outputs are logits or (after a final Softmax) probabilities.
    pub fn scores(&self) -> Scores {
        self.scores
    }

    /// The top `k` classes of each image, most probable first (all images in as few passes as
    /// the batch size allows). An image whose output is not a number fails the call, naming its
    /// index; [`Classifier::classify_stream`] reports such images one by one instead.
    pub async fn classify_async(
        &self,
        images: &[DynamicImage],
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let input: Vec<f32> = images
            .iter()
            .flat_map(|img| self.preprocess.apply(img))
            .collect();
        let logits = self.session.run_async(&input).await?.logits;
        logits
            .chunks(self.labels.len())
            .enumerate()
            .map(|(i, row)| self.top(row, k).map_err(|e| e.in_image(i)))
            .collect()
    }

    /// Blocking [`Classifier::classify_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn classify(&self, images: &[DynamicImage], k: usize) -> Result<Vec<Vec<Prediction>>> {
        pollster::block_on(self.classify_async(images, k))
    }

    /// Top `k` of one row of the model's output. A row holding NaN or infinity is refused: it has
    /// no ranking, and sorting it would give an answer that looks confident.
    pub fn top(&self, row: &[f32], k: usize) -> Result<Vec<Prediction>> {
        let infinite = row.iter().filter(|v| v.is_infinite()).count();
        let nan = row.iter().filter(|v| v.is_nan()).count();
        if nan + infinite > 0 {
            return Err(Error::NotANumber {
                nan,
                infinite,
                len: row.len(),
                probabilities: self.scores == Scores::Probabilities,
            });
        }
        let probs = match self.scores {
            Scores::Logits => softmax(row),
            Scores::Probabilities => row.to_vec(),
        };
        Ok(top_k(&probs, k.max(1))
            .into_iter()
            .map(|i| Prediction {
                index: i,
                label: self.labels[i].clone(),
                probability: probs[i],
                logit: (self.scores == Scores::Logits).then(|| row[i]),
            })
            .collect())
    }
}
