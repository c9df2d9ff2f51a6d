//! The high-level API: a model on a GPU that turns images into labelled predictions.

use crate::error::{Result, fail};
use crate::gpu::GpuContext;
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
    /// Softmax probability.
    pub probability: f32,
    /// The raw score the network gave.
    pub logit: f32,
}

/// A model planned on a GPU with its preprocessing and class names.
pub struct Classifier {
    session: Session,
    preprocess: Preprocess,
    labels: Vec<String>,
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
        let graph = model.into_graph_for(preprocess.output_shape())?;
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

    /// The top `k` classes of each image, most probable first (all images in as few passes as
    /// the batch size allows).
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
        Ok(logits
            .chunks(self.labels.len())
            .map(|row| self.top(row, k))
            .collect())
    }

    /// Blocking [`Classifier::classify_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn classify(&self, images: &[DynamicImage], k: usize) -> Result<Vec<Vec<Prediction>>> {
        pollster::block_on(self.classify_async(images, k))
    }

    /// Top `k` of one row of logits.
    pub fn top(&self, logits: &[f32], k: usize) -> Vec<Prediction> {
        let probs = softmax(logits);
        top_k(&probs, k.max(1))
            .into_iter()
            .map(|i| Prediction {
                index: i,
                label: self.labels[i].clone(),
                probability: probs[i],
                logit: logits[i],
            })
            .collect()
    }
}
