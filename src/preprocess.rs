//! Turning decoded images into the network's NCHW float input.

mod jpeg;

use crate::model::Model;
use anyhow::{Result, anyhow};
use image::{DynamicImage, imageops::FilterType};

/// ImageNet per-channel mean (torchvision).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet per-channel standard deviation (torchvision).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// CIFAR-10 per-channel mean (the usual one of the paper's CIFAR experiments' reimplementations).
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR-10 per-channel standard deviation.
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// Largest intermediate (resized, before the centre crop) image `apply` makes; a thin image
/// would otherwise blow up when its short side is scaled to the target (fuzzing found a 148-byte
/// 389x3 GIF that made a 33195x256 float image). 2^20 leaves ordinary photos (aspect ratio up
/// to 16:1 at 256) on the plain resize-then-crop path.
const MAX_RESIZED_PIXELS: u64 = 1 << 20;

/// How one image becomes one (3, H, W) input.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// Convert to gray (then replicate to 3 channels).
    pub gray: bool,
    /// Resize the shorter side to this (bilinear) and centre-crop to `size`; `None` resizes
    /// straight to `size`.
    pub resize_shorter: Option<u32>,
    /// Height and width after resize / crop, before `pad`.
    pub size: [u32; 2],
    /// Zero border (in `[0, 1]` pixel units, before normalisation) added on every side.
    pub pad: u32,
    /// Per-channel mean subtracted from [0, 1] pixel values.
    pub mean: [f32; 3],
    /// Per-channel standard deviation they are divided by.
    pub std: [f32; 3],
}

impl Preprocess {
    /// ImageNet: shorter side 256, centre crop 224, torchvision mean/std.
    pub fn imagenet() -> Self {
        Self {
            gray: false,
            resize_shorter: Some(256),
            size: [224, 224],
            pad: 0,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// A named recipe, for models whose file does not say (e.g. ONNX exports):
    /// `imagenet`, `cifar` (32x32 RGB, CIFAR-10 statistics) or `fashion-mnist` (28x28 gray padded
    /// to 32x32, the default model's statistics).
    pub fn named(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "imagenet" => Self::imagenet(),
            "cifar" | "cifar10" | "cifar-10" => Self {
                gray: false,
                resize_shorter: None,
                size: [32, 32],
                pad: 0,
                mean: CIFAR10_MEAN,
                std: CIFAR10_STD,
            },
            "fashion-mnist" | "fmnist" | "mnist" => Self::fashion_mnist([0.2860; 3], [0.3530; 3]),
            other => anyhow::bail!(
                "unknown preprocessing '{other}' (expected imagenet, cifar or fashion-mnist)"
            ),
        })
    }

    fn fashion_mnist(mean: [f32; 3], std: [f32; 3]) -> Self {
        Self {
            gray: true,
            resize_shorter: None,
            size: [28, 28],
            pad: 2,
            mean,
            std,
        }
    }

    /// What a model's metadata asks for; ImageNet nets default to ImageNet preprocessing and
    /// CIFAR nets to a plain resize to 32x32 with the metadata's (or CIFAR-10's) mean/std.
    pub fn for_model(model: &Model) -> Self {
        let md = &model.metadata;
        let triple = |key: &str, default: [f32; 3]| -> [f32; 3] {
            match md.get(key) {
                Some(s) => {
                    let v: Vec<f32> = serde_json::from_str::<Vec<f32>>(s)
                        .ok()
                        .or_else(|| s.trim().parse::<f32>().ok().map(|x| vec![x]))
                        .unwrap_or_default();
                    match v.len() {
                        1 => [v[0]; 3],
                        3 => [v[0], v[1], v[2]],
                        _ => default,
                    }
                }
                None => default,
            }
        };
        let input = md
            .get("input")
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default();
        if md.get("dataset").is_some_and(|d| d.contains("mnist")) || input.contains("gray") {
            return Self::fashion_mnist(triple("mean", [0.2860; 3]), triple("std", [0.3530; 3]));
        }
        let [_, h, w] = model.input_shape();
        if model.arch().is_some_and(|a| a.imagenet) || h >= 64 {
            // torchvision's recipe: resize the shorter side to 256/224 of the crop, centre-crop.
            return Self {
                mean: triple("mean", IMAGENET_MEAN),
                std: triple("std", IMAGENET_STD),
                resize_shorter: Some((h.min(w) as u32 * 256).div_ceil(224)),
                size: [h as u32, w as u32],
                ..Self::imagenet()
            };
        }
        Self {
            gray: false,
            resize_shorter: None,
            size: [h as u32, w as u32],
            pad: 0,
            mean: triple("mean", CIFAR10_MEAN),
            std: triple("std", CIFAR10_STD),
        }
    }

    /// Output (C, H, W).
    pub fn output_shape(&self) -> [usize; 3] {
        [
            3,
            (self.size[0] + 2 * self.pad) as usize,
            (self.size[1] + 2 * self.pad) as usize,
        ]
    }

    /// Applies the steps to one decoded image.
    pub fn apply(&self, img: &DynamicImage) -> Vec<f32> {
        let [h, w] = self.size;
        let resized = match self.resize_shorter {
            Some(s) => {
                let (iw, ih) = (img.width().max(1), img.height().max(1));
                let scale = s as f64 / iw.min(ih) as f64;
                let scaled = |v: u32, min: u32| ((v as f64 * scale).round() as u32).max(min);
                let (nw, nh) = (scaled(iw, w), scaled(ih, h));
                if nw as u64 * nh as u64 <= MAX_RESIZED_PIXELS {
                    let r = img.resize_exact(nw, nh, FilterType::Triangle);
                    r.crop_imm((nw - w) / 2, (nh - h) / 2, w, h)
                } else {
                    // A thin image (say 1x16384) scaled up so that its short side is `s` would
                    // be gigabytes; only its centre survives the crop, so cut the source down to
                    // that centre (plus a few pixels for the filter) first.
                    let keep = |v: u32, out: u32| v.min((out as f64 / scale).ceil() as u32 + 4);
                    let (cw, ch) = (keep(iw, w), keep(ih, h));
                    let src = img.crop_imm((iw - cw) / 2, (ih - ch) / 2, cw, ch);
                    let (nw, nh) = (scaled(cw, w), scaled(ch, h));
                    let r = src.resize_exact(nw, nh, FilterType::Triangle);
                    r.crop_imm((nw - w) / 2, (nh - h) / 2, w, h)
                }
            }
            None => img.resize_exact(w, h, FilterType::Triangle),
        };
        let [_, oh, ow] = self.output_shape();
        let mut out = vec![0.0f32; 3 * oh * ow];
        let rgb = resized.to_rgb32f();
        let pad = self.pad as usize;
        for c in 0..3 {
            for y in 0..oh {
                for x in 0..ow {
                    let inside =
                        y >= pad && x >= pad && y < pad + h as usize && x < pad + w as usize;
                    let v = if inside {
                        let px = rgb.get_pixel((x - pad) as u32, (y - pad) as u32).0;
                        if self.gray {
                            // ITU-R 601 luma, as PIL's convert("L") and the image crate use.
                            0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]
                        } else {
                            px[c]
                        }
                    } else {
                        0.0
                    };
                    out[(c * oh + y) * ow + x] = (v - self.mean[c]) / self.std[c];
                }
            }
        }
        out
    }
}

/// Decodes an image file, honouring EXIF orientation, with limits against decompression bombs.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_image(path: &std::path::Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    decode_image(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Images larger than this on either side are refused.
pub const MAX_IMAGE_SIDE: u32 = 16384;
/// Decoded images larger than this (bytes) are refused.
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;

/// A floating-point image (32-bit float TIFF) holds intensities as they are, which the
/// preprocessing takes to be 0..1: one in 0..255 or 0..65535 (or HDR, or NaN) would be normalised
/// into huge inputs and give a confident answer about nothing. Refuse those, saying what was found.
fn check_float_pixels(img: &DynamicImage) -> Result<()> {
    let values: &[f32] = match img {
        DynamicImage::ImageRgb32F(b) => b.as_raw(),
        DynamicImage::ImageRgba32F(b) => b.as_raw(),
        _ => return Ok(()),
    };
    let nan = values.iter().filter(|v| !v.is_finite()).count();
    if nan > 0 {
        return Err(anyhow!(
            "a floating-point image with {nan} NaN or infinite sample(s): not a picture the network can read"
        ));
    }
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo < 0.0 || hi > 1.0 {
        return Err(anyhow!(
            "a floating-point image with samples from {lo} to {hi}: float images must hold intensities in 0..1; rescale it, or save it with 8- or 16-bit integer samples"
        ));
    }
    Ok(())
}

/// Decodes image bytes (any format the `image` crate knows), honouring EXIF orientation.
pub fn decode_image(bytes: &[u8]) -> Result<DynamicImage> {
    use image::ImageDecoder;
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| anyhow!("cannot read image: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    reader.limits(limits);
    if reader.format().is_none() {
        return Err(anyhow!("not an image (unknown format)"));
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        jpeg::check_complete(bytes).map_err(|e| anyhow!("{e}"))?;
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| anyhow!("not a valid image: {e}"))?;
    // `into_decoder` checks the side limits but not the memory limit (only `ImageReader::decode`
    // does, and it cannot give us the EXIF orientation): check the decoded size here, before
    // anything is allocated for it.
    let (w, h) = decoder.dimensions();
    let bytes = decoder.total_bytes();
    if bytes > MAX_IMAGE_BYTES {
        return Err(anyhow!(
            "a {w}x{h} {:?} image needs {bytes} bytes decoded, over the limit of {MAX_IMAGE_BYTES} (a decompression bomb?)",
            decoder.color_type()
        ));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| {
        let text = e.to_string();
        if text.contains("sample format 3") {
            // SampleFormat 3 is IEEE floating point; only 32-bit floats decode.
            anyhow!(
                "a floating-point image whose sample size is not supported ({text}); convert it to 8- or 16-bit integers, or 32-bit floats in 0..1"
            )
        } else {
            anyhow!("not a valid image: {e}")
        }
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(anyhow!("image has no pixels"));
    }
    check_float_pixels(&img)?;
    img.apply_orientation(orientation);
    Ok(img)
}
