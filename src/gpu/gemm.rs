//! Quantized linear layers on the GPU: weights prepared once, a layer that encodes the int8
//! GEMM with its epilogue into the caller's `wgpu::CommandEncoder`, and blocking helpers on
//! top. CPU twin: [`crate::reference::gemm::matmul_i8`], equal bit for bit.
//!
//! Split by seam: `weights` (the packed weights and their upload), `layer` (the layer and
//! its build: epilogue folding, kernel choice), `dispatch` (encoding, splits along M and N,
//! the blocking and async runs).

mod dispatch;
mod layer;
mod weights;

pub use dispatch::DISPATCH_CACHE_ENTRIES;
pub use layer::{ActivationInput, QLinear};
pub use weights::QuantizedWeights;

use crate::error::{Error, Result};

/// Twin of `MatmulUniforms` in `shaders/matmul_i8.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulUniforms {
    /// Rows of A.
    pub m: u32,
    /// Output channels.
    pub n: u32,
    /// Reduction depth.
    pub k: u32,
    /// Packed words per row of A and W.
    pub k_words: u32,
    /// Output zero point (requantizing epilogues).
    pub out_zero_point: i32,
    /// Lowest output value; for a dequantizing epilogue with an activation, the bits of the
    /// f32 lower bound.
    pub clamp_min: i32,
    /// Highest output value; for a dequantizing epilogue with an activation, the bits of the
    /// f32 upper bound.
    pub clamp_max: i32,
    /// `128 · padding bytes per row` for U8 activations (their zero padding reads as -128
    /// after the XOR), else 0.
    pub a_pad_correction: i32,
    /// Output row width in elements (all of N).
    pub n_total: u32,
    /// First output column of this dispatch (a multiple of 4).
    pub col_offset: u32,
    /// Words between the aligned activation binding offset and this part's first row.
    pub a_word_offset: u32,
    /// Words between the aligned output binding offset and this part's first row.
    pub out_word_offset: u32,
    /// Rows between the aligned row-params binding offset and this part's first row.
    pub row_offset: u32,
    /// `DequantRequant`: the output scale's bits.
    pub out_scale_bits: u32,
    /// `DequantRequant`: `f32(1 / out_scale)` (the reciprocal convention's multiplier).
    pub out_inv_scale: f32,
    /// Padding to 16 bytes. Must stay 0: the shader's `rounded()` XORs a value's bits with
    /// it (`pad0` there) so that no compiler can reassociate through the product.
    pub pad: u32,
}

/// The per-layer epilogue values of [`MatmulUniforms`].
#[derive(Debug, Clone, Copy, Default)]
struct EpilogueUniforms {
    out_zero_point: i32,
    clamp_min: i32,
    clamp_max: i32,
    out_scale_bits: u32,
    out_inv_scale: f32,
}

/// Twin of `ChannelParams` in `shaders/matmul_i8.wgsl`: everything per output channel,
/// computed once when the layer is built.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ChannelParams {
    /// `Σ_k w[n, k]` in the I8 domain.
    pub sum_w: i32,
    /// Weight zero point in the I8 domain.
    pub zero_point: i32,
    /// i32 bias.
    pub bias: i32,
    /// Fixed-point shift.
    pub shift: i32,
    /// f32 scale / multiplier bits, or the fixed-point `m0`.
    pub scale_bits: u32,
    /// f32 bias after the scale.
    pub float_bias: f32,
    /// Padding to 32 bytes.
    pub pad: [u32; 2],
}

/// Twin of `RowParams` in `shaders/matmul_i8.wgsl`: per activation row (or one for all).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RowParams {
    /// Activation zero point in the activations' own storage domain.
    pub zero_point: i32,
    /// Activation scale (dynamic dequantization).
    pub scale: f32,
}

/// Batches up to this many rows use the GEMV kernel shape.
pub const GEMV_MAX_ROWS: usize = 3;
/// `count * unit` bytes, or [`Error::SizeOverflow`] naming `what` and both values.
fn bytes_of(what: &str, count: u64, unit: u64) -> Result<u64> {
    count.checked_mul(unit).ok_or_else(|| Error::SizeOverflow {
        what: format!("{what}: {count} * {unit} bytes overflows u64"),
    })
}

/// `v` as a `u64` (lossless on every supported target, checked anyway).
fn as_u64(what: &str, v: usize) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::SizeOverflow {
        what: format!("{what} = {v} exceeds u64"),
    })
}
