//! The training kernels (shaders/train/): the forward ops in train mode on plain NCHW values,
//! their backward passes, the loss and the optimizer, with the uniform structs that mirror their
//! params. Training keeps NCHW (not the blocked inference layout) and reads every weight from one
//! flat parameter buffer, so the optimizer updates all of them in one dispatch and the next step
//! reads the update with no repacking.

/// Flag: add the result to the destination instead of overwriting it (a value read by several
/// layers gets the sum of their gradients).
pub const ACCUMULATE: u32 = 1;
/// Flag of train_relu_backward: pass the gradient only where the ReLU's output is positive.
pub const MASK: u32 = 2;
/// Flag of train_relu: add the second input first (the residual sum); with the epilogue's
/// [`super::RELU`] bit it applies the ReLU after.
pub const ADD: u32 = 8;

/// One training kernel (a file in shaders/train/).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrainKernel {
    Conv,
    ConvBackwardInput,
    ConvBackwardWeight,
    SumChunks,
    BatchNormStats,
    BatchNorm,
    BatchNormBackwardReduce,
    BatchNormBackward,
    Relu,
    ReluBackward,
    MaxPool,
    MaxPoolBackward,
    AvgPool,
    AvgPoolBackward,
    ShortcutA,
    ShortcutABackward,
    Linear,
    LinearBackwardInput,
    LinearBackwardWeight,
    CrossEntropy,
    Sgd,
}

impl TrainKernel {
    /// Every training kernel.
    pub const ALL: [TrainKernel; 21] = [
        TrainKernel::Conv,
        TrainKernel::ConvBackwardInput,
        TrainKernel::ConvBackwardWeight,
        TrainKernel::SumChunks,
        TrainKernel::BatchNormStats,
        TrainKernel::BatchNorm,
        TrainKernel::BatchNormBackwardReduce,
        TrainKernel::BatchNormBackward,
        TrainKernel::Relu,
        TrainKernel::ReluBackward,
        TrainKernel::MaxPool,
        TrainKernel::MaxPoolBackward,
        TrainKernel::AvgPool,
        TrainKernel::AvgPoolBackward,
        TrainKernel::ShortcutA,
        TrainKernel::ShortcutABackward,
        TrainKernel::Linear,
        TrainKernel::LinearBackwardInput,
        TrainKernel::LinearBackwardWeight,
        TrainKernel::CrossEntropy,
        TrainKernel::Sgd,
    ];

    /// The file name in shaders/train/ without extension.
    pub fn name(self) -> &'static str {
        match self {
            TrainKernel::Conv => "train_conv",
            TrainKernel::ConvBackwardInput => "train_conv_backward_input",
            TrainKernel::ConvBackwardWeight => "train_conv_backward_weight",
            TrainKernel::SumChunks => "train_sum_chunks",
            TrainKernel::BatchNormStats => "train_batch_norm_stats",
            TrainKernel::BatchNorm => "train_batch_norm",
            TrainKernel::BatchNormBackwardReduce => "train_batch_norm_backward_reduce",
            TrainKernel::BatchNormBackward => "train_batch_norm_backward",
            TrainKernel::Relu => "train_relu",
            TrainKernel::ReluBackward => "train_relu_backward",
            TrainKernel::MaxPool => "train_max_pool",
            TrainKernel::MaxPoolBackward => "train_max_pool_backward",
            TrainKernel::AvgPool => "train_avg_pool",
            TrainKernel::AvgPoolBackward => "train_avg_pool_backward",
            TrainKernel::ShortcutA => "train_shortcut_a",
            TrainKernel::ShortcutABackward => "train_shortcut_a_backward",
            TrainKernel::Linear => "train_linear",
            TrainKernel::LinearBackwardInput => "train_linear_backward_input",
            TrainKernel::LinearBackwardWeight => "train_linear_backward_weight",
            TrainKernel::CrossEntropy => "train_cross_entropy",
            TrainKernel::Sgd => "train_sgd",
        }
    }

    /// The WGSL body (fragments not yet composed in).
    pub fn body(self) -> &'static str {
        match self {
            TrainKernel::Conv => include_str!("../../shaders/train/train_conv.wgsl"),
            TrainKernel::ConvBackwardInput => {
                include_str!("../../shaders/train/train_conv_backward_input.wgsl")
            }
            TrainKernel::ConvBackwardWeight => {
                include_str!("../../shaders/train/train_conv_backward_weight.wgsl")
            }
            TrainKernel::SumChunks => include_str!("../../shaders/train/train_sum_chunks.wgsl"),
            TrainKernel::BatchNormStats => {
                include_str!("../../shaders/train/train_batch_norm_stats.wgsl")
            }
            TrainKernel::BatchNorm => include_str!("../../shaders/train/train_batch_norm.wgsl"),
            TrainKernel::BatchNormBackwardReduce => {
                include_str!("../../shaders/train/train_batch_norm_backward_reduce.wgsl")
            }
            TrainKernel::BatchNormBackward => {
                include_str!("../../shaders/train/train_batch_norm_backward.wgsl")
            }
            TrainKernel::Relu => include_str!("../../shaders/train/train_relu.wgsl"),
            TrainKernel::ReluBackward => {
                include_str!("../../shaders/train/train_relu_backward.wgsl")
            }
            TrainKernel::MaxPool => include_str!("../../shaders/train/train_max_pool.wgsl"),
            TrainKernel::MaxPoolBackward => {
                include_str!("../../shaders/train/train_max_pool_backward.wgsl")
            }
            TrainKernel::AvgPool => include_str!("../../shaders/train/train_avg_pool.wgsl"),
            TrainKernel::AvgPoolBackward => {
                include_str!("../../shaders/train/train_avg_pool_backward.wgsl")
            }
            TrainKernel::ShortcutA => include_str!("../../shaders/train/train_shortcut_a.wgsl"),
            TrainKernel::ShortcutABackward => {
                include_str!("../../shaders/train/train_shortcut_a_backward.wgsl")
            }
            TrainKernel::Linear => include_str!("../../shaders/train/train_linear.wgsl"),
            TrainKernel::LinearBackwardInput => {
                include_str!("../../shaders/train/train_linear_backward_input.wgsl")
            }
            TrainKernel::LinearBackwardWeight => {
                include_str!("../../shaders/train/train_linear_backward_weight.wgsl")
            }
            TrainKernel::CrossEntropy => {
                include_str!("../../shaders/train/train_cross_entropy.wgsl")
            }
            TrainKernel::Sgd => include_str!("../../shaders/train/train_sgd.wgsl"),
        }
    }

    /// The name of the kernel's params struct in WGSL and its size as the host writes it.
    pub fn params(self) -> (&'static str, usize) {
        use std::mem::size_of;
        match self {
            TrainKernel::Conv
            | TrainKernel::ConvBackwardInput
            | TrainKernel::ConvBackwardWeight => ("TrainConvParams", size_of::<TrainConvParams>()),
            TrainKernel::SumChunks => ("SumChunksParams", size_of::<SumChunksParams>()),
            TrainKernel::BatchNormStats
            | TrainKernel::BatchNorm
            | TrainKernel::BatchNormBackwardReduce
            | TrainKernel::BatchNormBackward => {
                ("TrainBatchNormParams", size_of::<TrainBatchNormParams>())
            }
            TrainKernel::Relu | TrainKernel::ReluBackward => {
                ("TrainPointwiseParams", size_of::<TrainPointwiseParams>())
            }
            TrainKernel::MaxPool
            | TrainKernel::MaxPoolBackward
            | TrainKernel::AvgPool
            | TrainKernel::AvgPoolBackward
            | TrainKernel::ShortcutA
            | TrainKernel::ShortcutABackward => ("TrainPoolParams", size_of::<TrainPoolParams>()),
            TrainKernel::Linear
            | TrainKernel::LinearBackwardInput
            | TrainKernel::LinearBackwardWeight
            | TrainKernel::CrossEntropy => ("TrainLinearParams", size_of::<TrainLinearParams>()),
            TrainKernel::Sgd => ("TrainSgdParams", size_of::<TrainSgdParams>()),
        }
    }

    /// A short name for profiles.
    pub fn family(self) -> &'static str {
        match self {
            TrainKernel::Conv => "train: conv",
            TrainKernel::ConvBackwardInput => "train: conv dx",
            TrainKernel::ConvBackwardWeight | TrainKernel::SumChunks => "train: conv dw",
            TrainKernel::BatchNormStats | TrainKernel::BatchNorm => "train: batchnorm",
            TrainKernel::BatchNormBackwardReduce | TrainKernel::BatchNormBackward => {
                "train: batchnorm backward"
            }
            TrainKernel::Relu | TrainKernel::ReluBackward => "train: relu / add",
            TrainKernel::MaxPool | TrainKernel::MaxPoolBackward => "train: max pool",
            TrainKernel::AvgPool | TrainKernel::AvgPoolBackward => "train: avg pool",
            TrainKernel::ShortcutA | TrainKernel::ShortcutABackward => "train: shortcut A",
            TrainKernel::Linear
            | TrainKernel::LinearBackwardInput
            | TrainKernel::LinearBackwardWeight => "train: linear",
            TrainKernel::CrossEntropy => "train: loss",
            TrainKernel::Sgd => "train: sgd",
        }
    }
}

/// `TrainConvParams` in shaders/fragments/train_conv.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TrainConvParams {
    pub batch: u32,
    pub in_c: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    /// Where the OIHW weights start in the parameter buffer.
    pub weight_offset: u32,
    /// Where the weight gradient starts in the gradient buffer.
    pub grad_offset: u32,
    /// Terms of the weight gradient's sum per chunk, and the chunks.
    pub chunk: u32,
    pub chunks: u32,
    pub flags: u32,
    pub _pad: [u32; 2],
}

/// `SumChunksParams` in shaders/train/train_sum_chunks.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SumChunksParams {
    pub len: u32,
    pub chunks: u32,
    pub offset: u32,
    pub _pad: u32,
}

/// `TrainBatchNormParams` in shaders/fragments/train_batch_norm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TrainBatchNormParams {
    pub batch: u32,
    pub channels: u32,
    pub spatial: u32,
    pub gamma_offset: u32,
    pub beta_offset: u32,
    /// Where this layer's statistics start in the running and saved buffers.
    pub stats_offset: u32,
    pub momentum: f32,
    pub eps: f32,
    pub flags: u32,
    pub _pad: [u32; 3],
}

/// `TrainPointwiseParams` in shaders/fragments/train_pointwise.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TrainPointwiseParams {
    pub len: u32,
    pub flags: u32,
    pub _pad: [u32; 2],
}

/// `TrainPoolParams` in shaders/fragments/train_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TrainPoolParams {
    pub batch: u32,
    pub in_c: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub pad_before: u32,
    pub flags: u32,
    pub _pad: u32,
}

/// `TrainLinearParams` in shaders/fragments/train_linear.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TrainLinearParams {
    pub batch: u32,
    pub in_features: u32,
    pub out_features: u32,
    pub weight_offset: u32,
    pub bias_offset: u32,
    pub flags: u32,
    pub _pad: [u32; 2],
}

/// `TrainSgdParams` in shaders/train/train_sgd.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TrainSgdParams {
    pub len: u32,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}
