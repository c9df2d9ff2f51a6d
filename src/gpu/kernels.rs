//! The WGSL kernels shipped in shaders/, compiled into the binary.

/// One compute kernel (one file in shaders/, entry point `main`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Conv,
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
    pub const ALL: [Kernel; 9] = [
        Kernel::Conv,
        Kernel::BatchNorm,
        Kernel::Relu,
        Kernel::MaxPool,
        Kernel::GlobalAvgPool,
        Kernel::ShortcutA,
        Kernel::Add,
        Kernel::Linear,
        Kernel::Softmax,
    ];

    /// The file name in shaders/ without extension.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Conv => "conv",
            Kernel::BatchNorm => "batchnorm",
            Kernel::Relu => "relu",
            Kernel::MaxPool => "max_pool",
            Kernel::GlobalAvgPool => "global_avg_pool",
            Kernel::ShortcutA => "shortcut_a",
            Kernel::Add => "add",
            Kernel::Linear => "linear",
            Kernel::Softmax => "softmax",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            Kernel::Conv => include_str!("../../shaders/conv.wgsl"),
            Kernel::BatchNorm => include_str!("../../shaders/batchnorm.wgsl"),
            Kernel::Relu => include_str!("../../shaders/relu.wgsl"),
            Kernel::MaxPool => include_str!("../../shaders/max_pool.wgsl"),
            Kernel::GlobalAvgPool => include_str!("../../shaders/global_avg_pool.wgsl"),
            Kernel::ShortcutA => include_str!("../../shaders/shortcut_a.wgsl"),
            Kernel::Add => include_str!("../../shaders/add.wgsl"),
            Kernel::Linear => include_str!("../../shaders/linear.wgsl"),
            Kernel::Softmax => include_str!("../../shaders/softmax.wgsl"),
        }
    }
}
