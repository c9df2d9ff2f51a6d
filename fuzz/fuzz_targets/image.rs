//! Any bytes as an image file: decode (every format the crate is built with, EXIF orientation,
//! decompression limits), then the two preprocessing recipes (ImageNet resize + centre crop, and
//! the gray padded Fashion-MNIST one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use resnet_wgpu::preprocess::{Preprocess, decode_image};

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = decode_image(data) {
        let small = Preprocess {
            gray: true,
            resize_shorter: None,
            size: [28, 28],
            pad: 2,
            mean: [0.5; 3],
            std: [0.25; 3],
        };
        let out = small.apply(&img);
        assert_eq!(out.len(), 3 * 32 * 32);
        let imagenet = Preprocess::imagenet();
        let out = imagenet.apply(&img);
        assert_eq!(out.len(), 3 * 224 * 224);
    }
});
