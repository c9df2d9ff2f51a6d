//! The kernels floor: the WGSL of every compute kernel (the files in shaders/, and the
//! convolutions generated per tile shape), the shared fragments they are composed from, the
//! uniform structs that mirror their params, and [`Kernel`], the registry that names them.
//! Nothing here knows about devices, graphs or sessions; `gpu` builds pipelines from these
//! sources and `ops` fills the params.

mod compose;
pub mod conv_direct;
pub mod conv_tiled;
pub mod params;
pub mod train;

pub use compose::{compose, fragment_names};
pub use conv_direct::ConvTile;
pub use conv_tiled::TiledTile;
pub use train::TrainKernel;

use crate::precision::Precision;
use std::borrow::Cow;

/// Invocations per workgroup of every kernel (`WORKGROUP` in WGSL, emitted from this constant).
pub const WORKGROUP: u32 = 64;

/// Epilogue flag: add the residual (the node's second input) before the ReLU.
pub const HAS_RESIDUAL: u32 = 2;
/// Epilogue flag: ReLU last.
pub const RELU: u32 = 4;

/// One compute kernel (entry point `main`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// The plain direct convolution, the yardstick (shaders/conv_reference.wgsl).
    ConvReference,
    /// A generated register-blocked convolution (see [`conv_direct`]) in a precision.
    ConvDirect(ConvTile, Precision),
    /// A generated workgroup-tiled convolution (see [`conv_tiled`]), f32.
    ConvTiled(TiledTile),
    /// Adds up the partial sums of split kernels, + bias, epilogue (shaders/split_reduce.wgsl).
    SplitReduce,
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
    /// A training kernel (shaders/train/, see [`train`]).
    Train(TrainKernel),
}

impl Kernel {
    /// Every kernel that is a file in shaders/.
    pub const FILES: [Kernel; 12] = [
        Kernel::ConvReference,
        Kernel::SplitReduce,
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

    /// Every kernel the engine can build: the files, each generated convolution of
    /// [`ConvTile::catalog`] in every precision and each of [`TiledTile::catalog`] (what the
    /// shader tests compile).
    pub fn all() -> Vec<Kernel> {
        let mut all = Kernel::FILES.to_vec();
        for tile in ConvTile::catalog() {
            for precision in [Precision::F32, Precision::F16] {
                all.push(Kernel::ConvDirect(tile, precision));
            }
        }
        all.extend(TiledTile::catalog().into_iter().map(Kernel::ConvTiled));
        all.extend(TrainKernel::ALL.map(Kernel::Train));
        all
    }

    /// The file name in shaders/ without extension, or the generated variant's name (f16 ones
    /// end in `_f16`).
    pub fn name(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Kernel::ConvReference => "conv_reference",
            Kernel::ConvDirect(t, p) => return Cow::Owned(conv_direct::kernel_name(t, p)),
            Kernel::ConvTiled(t) => return Cow::Owned(t.name()),
            Kernel::Train(t) => t.name(),
            Kernel::SplitReduce => "split_reduce",
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
            // A Winograd layer's three steps count as one family, in either precision.
            Kernel::ConvDirect(t, _) if t.batched => "conv 3x3 (winograd)",
            Kernel::ConvDirect(t, _) if t.split => "conv (split-K)",
            Kernel::ConvDirect(t, _) if t.pointwise => "conv 1x1",
            Kernel::ConvDirect(..) => "conv kxk (direct)",
            Kernel::ConvTiled(t) if t.split => "conv (tiled split-K)",
            Kernel::ConvTiled(_) => "conv (tiled)",
            Kernel::SplitReduce => "split-K reduce",
            Kernel::WinogradInput | Kernel::WinogradOutput => "conv 3x3 (winograd)",
            Kernel::BatchNorm => "batchnorm",
            Kernel::Relu => "relu",
            Kernel::MaxPool => "max pool",
            Kernel::GlobalAvgPool => "global avg pool",
            Kernel::ShortcutA => "shortcut A",
            Kernel::Add => "add",
            Kernel::Linear => "linear",
            Kernel::Softmax => "softmax",
            Kernel::Train(t) => t.family(),
        }
    }

    /// The complete WGSL module, fragments composed in.
    pub fn source(self) -> String {
        let body = match self {
            Kernel::ConvDirect(t, p) => return compose(&self.name(), &conv_direct::source(t, p)),
            Kernel::ConvTiled(t) => return compose(&self.name(), &conv_tiled::source(t)),
            Kernel::Train(t) => t.body(),
            Kernel::ConvReference => include_str!("../../shaders/conv_reference.wgsl"),
            Kernel::SplitReduce => include_str!("../../shaders/split_reduce.wgsl"),
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
        };
        compose(&self.name(), body)
    }

    /// The name of the kernel's params struct in WGSL, and its size as the host writes it (the
    /// shader test checks the two agree).
    pub fn params(self) -> (&'static str, usize) {
        use params::*;
        use std::mem::size_of;
        match self {
            Kernel::ConvReference => ("ConvReferenceParams", size_of::<ConvReferenceParams>()),
            Kernel::ConvDirect(..) => ("ConvDirectParams", size_of::<ConvDirectParams>()),
            Kernel::ConvTiled(_) => ("ConvTiledParams", size_of::<ConvTiledParams>()),
            Kernel::SplitReduce => ("SplitReduceParams", size_of::<SplitReduceParams>()),
            Kernel::WinogradInput => ("WinogradInputParams", size_of::<WinogradInputParams>()),
            Kernel::WinogradOutput => ("WinogradOutputParams", size_of::<WinogradOutputParams>()),
            Kernel::BatchNorm => ("BatchNormParams", size_of::<BatchNormParams>()),
            Kernel::Relu => ("ReluParams", size_of::<ReluParams>()),
            Kernel::MaxPool => ("MaxPoolParams", size_of::<MaxPoolParams>()),
            Kernel::GlobalAvgPool => ("GlobalAvgPoolParams", size_of::<GlobalAvgPoolParams>()),
            Kernel::ShortcutA => ("ShortcutAParams", size_of::<ShortcutAParams>()),
            Kernel::Add => ("AddParams", size_of::<AddParams>()),
            Kernel::Linear => ("LinearParams", size_of::<LinearParams>()),
            Kernel::Softmax => ("SoftmaxParams", size_of::<SoftmaxParams>()),
            Kernel::Train(t) => t.params(),
        }
    }

    /// Whether the kernel needs an adapter feature beyond WebGPU's core.
    pub fn needs(self) -> wgpu::Features {
        match self {
            Kernel::ConvDirect(t, p) => {
                let mut f = wgpu::Features::empty();
                if t.subgroup8 {
                    f |= wgpu::Features::SUBGROUP;
                }
                if p == Precision::F16 {
                    f |= wgpu::Features::SHADER_F16;
                }
                f
            }
            _ => wgpu::Features::empty(),
        }
    }
}
