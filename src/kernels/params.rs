//! The uniform structs of the kernels, as the host writes them. Each mirrors the WGSL struct of
//! the same name (tests/shaders.rs checks every kernel's struct size against [`super::Kernel::params`]).

/// `ConvReferenceParams` in shaders/conv_reference.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvReferenceParams {
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
    pub out_c4: u32,
    pub flags: u32,
    pub pixel_blocks: u32,
}

/// `ConvDirectParams` in the generated direct convolutions (`super::conv_direct`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvDirectParams {
    /// batch x out_h x out_w: pixels are numbered across the batch.
    pub pixels: u32,
    pub out_hw: u32,
    pub out_w: u32,
    pub out_c4: u32,
    pub in_c4: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub in_hw: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub flags: u32,
    pub tiles_m: u32,
    pub tiles_n: u32,
    /// vec4s of packed weights per channel tile.
    pub tile_stride: u32,
    /// Batched kernels: the number of images (weight sets); `pixels` is then per image.
    pub images: u32,
    /// Input channel blocks each split of a split-K kernel sums over (all of them otherwise).
    pub split_c4: u32,
    /// Split-K kernels: vec4s between the partial sums of consecutive splits.
    pub split_stride: u32,
    pub _pad: [u32; 3],
}

/// `ConvTiledParams` in the generated workgroup-tiled convolutions (`super::conv_tiled`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvTiledParams {
    /// batch x out_h x out_w: pixels are numbered across the batch.
    pub pixels: u32,
    pub out_hw: u32,
    pub out_w: u32,
    pub out_c4: u32,
    pub in_c4: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub in_hw: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub flags: u32,
    pub tiles_m: u32,
    pub tiles_n: u32,
    /// vec4s of packed weights per channel tile.
    pub tile_stride: u32,
    /// The K loop's length: kernel_h x kernel_w x in_c4 steps of 4 input channels.
    pub steps: u32,
    /// Steps each split of a split-K kernel sums over (all of them otherwise).
    pub split_steps: u32,
    /// Split-K kernels: vec4s between the partial sums of consecutive splits.
    pub split_stride: u32,
}

/// `SplitReduceParams` in shaders/split_reduce.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SplitReduceParams {
    /// vec4s of one split's partial result (= of the output).
    pub len4: u32,
    pub splits: u32,
    /// Channel blocks and pixels per image of the output (the bias is per channel block).
    pub out_c4: u32,
    pub out_hw: u32,
    pub flags: u32,
    pub _pad: [u32; 3],
}

/// `WinogradInputParams` in shaders/winograd_input.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct WinogradInputParams {
    pub batch: u32,
    pub in_c4: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub tiles_h: u32,
    pub tiles_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
}

/// `WinogradOutputParams` in shaders/winograd_output.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct WinogradOutputParams {
    pub batch: u32,
    pub out_c4: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub tiles_h: u32,
    pub tiles_w: u32,
    pub flags: u32,
    pub _pad: u32,
}

/// `BatchNormParams` in shaders/batchnorm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BatchNormParams {
    pub len4: u32,
    pub blocks: u32,
    pub spatial: u32,
    pub relu: u32,
    pub eps: f32,
    pub _pad: [u32; 3],
}

/// `ReluParams` in shaders/relu.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ReluParams {
    pub len4: u32,
    pub _pad: [u32; 3],
}

/// `SoftmaxParams` in shaders/softmax.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SoftmaxParams {
    pub rows: u32,
    pub channels: u32,
    pub blocks: u32,
    pub spatial: u32,
}

/// `MaxPoolParams` in shaders/max_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MaxPoolParams {
    pub planes: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub _pad: u32,
}

/// `GlobalAvgPoolParams` in shaders/global_avg_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GlobalAvgPoolParams {
    /// (image, channel block) planes.
    pub planes: u32,
    /// Positions per plane.
    pub spatial: u32,
    /// Positions each invocation sums (a chunk of its plane).
    pub chunk: u32,
    /// Chunks per plane: 1 writes the mean to the output; more write each chunk's share of the
    /// mean, chunk-major, for shaders/split_reduce.wgsl to add up.
    pub chunks: u32,
}

/// `ShortcutAParams` in shaders/shortcut_a.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ShortcutAParams {
    pub batch: u32,
    pub in_c: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub stride: u32,
    pub pad_before: u32,
    pub _pad: [u32; 3],
}

/// `AddParams` in shaders/add.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AddParams {
    pub len4: u32,
    pub relu: u32,
    pub _pad: [u32; 2],
}

/// `LinearParams` in shaders/linear.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LinearParams {
    pub batch: u32,
    /// vec4s per image of the (blocked) input.
    pub in_len4: u32,
    pub out_features: u32,
    /// Floats per image of the (blocked) output: out_features rounded up to 4.
    pub out_len: u32,
    /// vec4s of the dot product each invocation sums (a chunk of `in_len4`).
    pub chunk4: u32,
    /// Chunks per dot product: 1 writes the output (+ bias); more write partial sums,
    /// chunk-major, for shaders/split_reduce.wgsl to add up (with the bias).
    pub chunks: u32,
    pub _pad: [u32; 2],
}
