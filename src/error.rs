//! The crate's one error type.
//!
//! Every variant names what was wrong and carries the offending values, so a
//! message is actionable without a debugger.

use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in wgpu-quant.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A scale is not a positive, finite, normal f32.
    #[error("{what} = {value:e} (bits {bits:#010x}) is not a positive, finite, normal f32", bits = value.to_bits())]
    InvalidScale {
        /// Which scale (for example `scale[3]` or `s_a * s_w[7]`).
        what: String,
        /// The offending value.
        value: f32,
    },
    /// A zero point lies outside the quantized range it must live in.
    #[error("{what} = {value} is outside the quantized range [{qmin}, {qmax}]")]
    ZeroPointOutOfRange {
        /// Which zero point.
        what: String,
        /// The offending value.
        value: i32,
        /// Lowest allowed value.
        qmin: i32,
        /// Highest allowed value.
        qmax: i32,
    },
    /// A quantized range is empty or does not fit the storage type.
    #[error("quantized range [{qmin}, {qmax}] is empty or does not fit {qtype}")]
    InvalidRange {
        /// The storage type.
        qtype: &'static str,
        /// Requested lowest value.
        qmin: i32,
        /// Requested highest value.
        qmax: i32,
    },
    /// A per-axis parameter vector has the wrong length.
    #[error("{what} has {got} entries, expected {expected}")]
    LengthMismatch {
        /// Which vector.
        what: String,
        /// Entries given.
        got: usize,
        /// Entries required.
        expected: usize,
    },
    /// An axis index is out of range for the tensor's rank.
    #[error("axis {axis} is out of range for a tensor of rank {rank}")]
    AxisOutOfRange {
        /// Requested axis.
        axis: usize,
        /// Tensor rank.
        rank: usize,
    },
    /// A tensor's data length does not match its shape.
    #[error("{what}: shape {shape:?} needs {expected} elements but {got} were given")]
    ShapeMismatch {
        /// Which tensor.
        what: String,
        /// The declared shape.
        shape: Vec<usize>,
        /// Elements the shape needs.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// Two operands disagree on a dimension they must share.
    #[error("{what}: {left} != {right}")]
    DimensionMismatch {
        /// Which dimension and operands.
        what: String,
        /// One side.
        left: usize,
        /// The other side.
        right: usize,
    },
    /// A dimension is zero where the operation needs at least one element.
    #[error("{what} is zero; the operation needs at least one element")]
    EmptyDimension {
        /// Which dimension.
        what: String,
    },
    /// The exact i32 accumulator could overflow for this shape, types, zero points and bias.
    #[error(
        "i32 accumulator could overflow on output channel {channel}: with K = {k} its true value lies in [{min}, {max}], outside [-2^31, 2^31 - 1]"
    )]
    AccumulatorOverflow {
        /// Reduction depth.
        k: usize,
        /// First output channel whose bound fails.
        channel: usize,
        /// Lowest possible accumulator value.
        min: i128,
        /// Highest possible accumulator value.
        max: i128,
    },
    /// Input data contains a NaN or an infinity where only finite values are allowed.
    #[error("{what} contains a non-finite value {value} at index {index}")]
    NonFiniteInput {
        /// Which input.
        what: String,
        /// Index of the first non-finite element.
        index: usize,
        /// The value.
        value: f32,
    },
    /// Input that must not be empty is empty.
    #[error("{what} is empty")]
    EmptyInput {
        /// Which input.
        what: String,
    },
    /// A configuration value is out of its allowed range.
    #[error("{what} = {value} is invalid: {reason}")]
    InvalidConfig {
        /// Which setting.
        what: String,
        /// Its value, formatted.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Parameters built for one convention, type or epilogue were combined with another.
    #[error("mismatched specification: {0}")]
    Mismatch(String),
    /// No GPU adapter could be found.
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The adapter lacks a feature or limit an operation requires.
    #[error("adapter lacks a required capability: {0}")]
    Unsupported(String),
    /// The device was destroyed or lost; the context cannot run anything any more.
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// A wgpu device request, validation or out-of-memory error, caught by an error scope.
    #[error("GPU error: {0}")]
    Gpu(String),
    /// A tensor given to a layer, model or kernel is not the one it was built for
    /// (element type, columns, or quantization params).
    #[error("{what}: expected {expected}, found {found}")]
    TensorMismatch {
        /// Which tensor.
        what: String,
        /// What the layer was built for.
        expected: String,
        /// What was given.
        found: String,
    },
    /// A caller's buffer is smaller than the data it must hold.
    #[error("{what} buffer holds {size} bytes but needs {needed} bytes")]
    BufferTooSmall {
        /// Which buffer.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// The buffer's size in bytes.
        size: u64,
    },
    /// More rows than a tensor, layer or quantizer was built for.
    #[error("{what}: {rows} rows exceed the capacity of {capacity} rows chosen at build time")]
    CapacityExceeded {
        /// Which buffer or op.
        what: String,
        /// Rows requested.
        rows: usize,
        /// Rows it was built for.
        capacity: usize,
    },
    /// A caller's buffer cannot be used by this context: destroyed, or created on another
    /// device.
    #[error("{what} buffer cannot be used: {reason}")]
    BufferUnusable {
        /// Which buffer.
        what: String,
        /// Why (destroyed, another device, or wgpu's message).
        reason: String,
    },
    /// One buffer passed for two bindings that must not overlap (an op's input and output).
    #[error("{first} and {second} are the same buffer; they must be distinct")]
    BufferAliasing {
        /// The first role.
        first: String,
        /// The second role.
        second: String,
    },
    /// A size computed from a shape does not fit the integer type that must hold it.
    #[error("size overflow: {what}")]
    SizeOverflow {
        /// The shape or size whose arithmetic overflowed, with its values.
        what: String,
    },
    /// An f32 bias does not fit i32 once divided by its accumulator scale.
    #[error("bias[{channel}] = {bias:e} / (s_a * s_w = {scale:e}) = {quotient:e} does not fit i32")]
    BiasOverflow {
        /// The output channel.
        channel: usize,
        /// The f32 bias.
        bias: f32,
        /// The accumulator scale `s_a * s_w[channel]`.
        scale: f32,
        /// The quotient before rounding.
        quotient: f32,
    },
    /// A shader failed to assemble, parse or validate.
    #[error("shader {name}: {message}")]
    Shader {
        /// Which shader.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// A tensor is not in a safetensors file.
    #[error("tensor {name:?} not found; the file holds {}", few_names(.available))]
    MissingTensor {
        /// The requested name.
        name: String,
        /// Every name the file holds, sorted.
        available: Vec<String>,
    },
    /// A tensor in a safetensors file has a dtype the caller cannot read it as.
    #[error("tensor {name:?} has dtype {found}, expected {expected}")]
    WrongDtype {
        /// The tensor's name.
        name: String,
        /// The dtype in the file, as the format spells it (for example `F16`).
        found: String,
        /// The dtype or dtypes accepted (for example `F32, F16 or BF16`).
        expected: String,
    },
    /// A tensor in a safetensors file has a different shape than the caller expects.
    #[error("tensor {name:?} has shape {found:?}, expected {expected:?}")]
    WrongShape {
        /// The tensor's name.
        name: String,
        /// The shape the caller asked for.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// Bytes that are not a valid safetensors file (truncated, corrupt header, bad offsets), or
    /// tensors that cannot be serialized.
    #[error("invalid safetensors data: {0}")]
    Format(String),
    /// Calibration data that an observer cannot represent: a histogram that would grow past its
    /// bin cap, or a data range wider than f32. Not an adapter problem: the data (or the
    /// observer's configuration) must change.
    #[error("calibration failed: {what} = {value}: {reason}")]
    Calibration {
        /// What could not be represented.
        what: String,
        /// Its value, formatted.
        value: String,
        /// Why, and what to do about it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
}

/// Formats up to eight names for a message, then how many more there are.
fn few_names(names: &[String]) -> String {
    const SHOWN: usize = 8;
    if names.is_empty() {
        return "no tensors".to_string();
    }
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}

/// Rejects a scale that is not a positive, finite, normal f32.
pub(crate) fn check_scale(what: impl FnOnce() -> String, value: f32) -> Result<()> {
    if value.is_normal() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidScale {
            what: what(),
            value,
        })
    }
}

/// Rejects the first non-finite element of `data`.
pub(crate) fn check_finite(what: &str, data: &[f32]) -> Result<()> {
    match data.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::NonFiniteInput {
            what: what.to_string(),
            index,
            value: data[index],
        }),
    }
}
