//! The WGSL kernels: the files in shaders/ (compiled into the binary), and the tuned convolutions
//! generated per tile shape (src/ops/conv/wgsl.rs).

use crate::ops::conv::wgsl::{self, ConvTile};
use crate::precision::Precision;
use std::borrow::Cow;

/// One compute kernel (entry point `main`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    ConvReference,
    ConvFast(ConvTile),
    /// The same tuned variant with f16 weights and arithmetic (needs SHADER_F16).
    ConvFastF16(ConvTile),
    WinogradInput,
    WinogradOutput,
    BatchNorm,
    Relu,
    MaxPool,
    GlobalAvgPool,
    ShortcutA,
    Add,
    Linear,
    Softmax,
}

impl Kernel {
    /// The tuned convolution `tile` in `precision`.
    pub fn conv_fast(tile: ConvTile, precision: Precision) -> Kernel {
        match precision {
            Precision::F32 => Kernel::ConvFast(tile),
            Precision::F16 => Kernel::ConvFastF16(tile),
        }
    }

    /// Every kernel that is a file in shaders/.
    pub const FILES: [Kernel; 11] = [
        Kernel::ConvReference,
        Kernel::WinogradInput,
        Kernel::WinogradOutput,
        Kernel::BatchNorm,
        Kernel::Relu,
        Kernel::MaxPool,
        Kernel::GlobalAvgPool,
        Kernel::ShortcutA,
        Kernel::Add,
        Kernel::Linear,
        Kernel::Softmax,
    ];

    /// The file name in shaders/ without extension, or the generated variant's name.
    pub fn name(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Kernel::ConvReference => "conv_reference",
            Kernel::ConvFast(t) => return Cow::Owned(wgsl::kernel_name(t, Precision::F32)),
            Kernel::ConvFastF16(t) => return Cow::Owned(wgsl::kernel_name(t, Precision::F16)),
            Kernel::WinogradInput => "winograd_input",
            Kernel::WinogradOutput => "winograd_output",
            Kernel::BatchNorm => "batchnorm",
            Kernel::Relu => "relu",
            Kernel::MaxPool => "max_pool",
            Kernel::GlobalAvgPool => "global_avg_pool",
            Kernel::ShortcutA => "shortcut_a",
            Kernel::Add => "add",
            Kernel::Linear => "linear",
            Kernel::Softmax => "softmax",
        })
    }

    /// A short name of the kernel family, for profiles.
    pub fn family(self) -> &'static str {
        match self {
            Kernel::ConvReference => "conv (reference)",
            // The same families in f16, so that a Winograd layer's three steps stay one.
            Kernel::ConvFast(t) | Kernel::ConvFastF16(t) if t.batched => "conv 3x3 (winograd)",
            Kernel::ConvFast(t) | Kernel::ConvFastF16(t) if t.pointwise => "conv 1x1",
            Kernel::ConvFast(_) | Kernel::ConvFastF16(_) => "conv kxk (direct)",
            Kernel::WinogradInput | Kernel::WinogradOutput => "conv 3x3 (winograd)",
            Kernel::BatchNorm => "batchnorm",
            Kernel::Relu => "relu",
            Kernel::MaxPool => "max pool",
            Kernel::GlobalAvgPool => "global avg pool",
            Kernel::ShortcutA => "shortcut A",
            Kernel::Add => "add",
            Kernel::Linear => "linear",
            Kernel::Softmax => "softmax",
        }
    }

    pub fn source(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Kernel::ConvReference => include_str!("../../shaders/conv_reference.wgsl"),
            Kernel::ConvFast(t) => return Cow::Owned(wgsl::source(t, Precision::F32)),
            Kernel::ConvFastF16(t) => return Cow::Owned(wgsl::source(t, Precision::F16)),
            Kernel::WinogradInput => include_str!("../../shaders/winograd_input.wgsl"),
            Kernel::WinogradOutput => include_str!("../../shaders/winograd_output.wgsl"),
            Kernel::BatchNorm => include_str!("../../shaders/batchnorm.wgsl"),
            Kernel::Relu => include_str!("../../shaders/relu.wgsl"),
            Kernel::MaxPool => include_str!("../../shaders/max_pool.wgsl"),
            Kernel::GlobalAvgPool => include_str!("../../shaders/global_avg_pool.wgsl"),
            Kernel::ShortcutA => include_str!("../../shaders/shortcut_a.wgsl"),
            Kernel::Add => include_str!("../../shaders/add.wgsl"),
            Kernel::Linear => include_str!("../../shaders/linear.wgsl"),
            Kernel::Softmax => include_str!("../../shaders/softmax.wgsl"),
        })
    }
}
