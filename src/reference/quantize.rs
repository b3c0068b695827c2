//! Tensor quantize and dequantize, per tensor or per axis: the CPU twins of
//! `shaders/quantize.wgsl` (quantize, dequantize) and `shaders/dequantize_i32.wgsl`.

use crate::error::{Error, Result};
use crate::quant::convention::Convention;
use crate::quant::params::QuantParams;
use crate::quant::qtype::QType;
use crate::quant::scalar::{dequantize_value, quantize_value};

/// The channel of flat index `i` along `params.axis()` for a row-major tensor of `shape`.
fn channel_of(i: usize, shape: &[usize], axis: Option<usize>) -> usize {
    match axis {
        None => 0,
        Some(axis) => {
            let inner: usize = shape[axis + 1..].iter().product();
            (i / inner) % shape[axis]
        }
    }
}

/// The tensor rule shared with the GPU ops: the shape's element count (checked: a count that
/// overflows usize is [`Error::SizeOverflow`]) equals the data length; a rank-0 shape `[]` is
/// one element and takes per-tensor params only ([`QuantParams::check_shape`]).
fn check_tensor(what: &str, len: usize, shape: &[usize], params: &QuantParams) -> Result<()> {
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::SizeOverflow {
            what: format!("{what}: the element count of shape {shape:?} overflows usize"),
        })?;
    if expected != len {
        return Err(Error::ShapeMismatch {
            what: what.into(),
            shape: shape.to_vec(),
            expected,
            got: len,
        });
    }
    params.check_shape(shape)
}

/// Stores a quantized integer as its storage byte.
pub fn to_storage_byte(q: i32, qtype: QType) -> u8 {
    match qtype {
        QType::I8 => q as i8 as u8,
        QType::U8 => q as u8,
    }
}

/// Reads a storage byte as its integer value.
pub fn from_storage_byte(byte: u8, qtype: QType) -> i32 {
    match qtype {
        QType::I8 => i32::from(byte as i8),
        QType::U8 => i32::from(byte),
    }
}

/// Quantizes a row-major tensor; the result is one storage byte per element.
///
/// Every element follows [`quantize_value`] with its channel's scale and zero point and
/// the params' clamp range. NaN and ±Inf are accepted and follow the convention.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `x` does not match `shape`, [`Error::SizeOverflow`] when the
/// shape's element count overflows, or the params' axis errors.
pub fn quantize(
    convention: Convention,
    x: &[f32],
    shape: &[usize],
    params: &QuantParams,
) -> Result<Vec<u8>> {
    check_tensor("quantize input", x.len(), shape, params)?;
    let range = params.range();
    Ok(x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = channel_of(i, shape, params.axis());
            let q = quantize_value(
                convention,
                v,
                params.scale(c),
                params.zero_point(c),
                range.qmin(),
                range.qmax(),
            );
            to_storage_byte(q, params.qtype())
        })
        .collect())
}

/// Dequantizes storage bytes: `f32(f32(q - zp) * s)` per element.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `q` does not match `shape`, [`Error::SizeOverflow`] when the
/// shape's element count overflows, or the params' axis errors.
pub fn dequantize(q: &[u8], shape: &[usize], params: &QuantParams) -> Result<Vec<f32>> {
    check_tensor("dequantize input", q.len(), shape, params)?;
    Ok(q.iter()
        .enumerate()
        .map(|(i, &b)| {
            let c = channel_of(i, shape, params.axis());
            dequantize_value(
                from_storage_byte(b, params.qtype()),
                params.scale(c),
                params.zero_point(c),
            )
        })
        .collect())
}

/// Checks that params can dequantize an int32 tensor: int32 has no zero point in ONNX
/// (`DequantizeLinear` with int32 input), so every zero point must be 0. The params' qtype and
/// clamp range are not used (dequantize does not clamp), so params of either type serve.
///
/// # Errors
/// [`Error::ZeroPointOutOfRange`] (range `[0, 0]`) naming the first non-zero zero point.
pub fn check_int32_params(params: &QuantParams) -> Result<()> {
    match params.zero_points().iter().position(|&z| z != 0) {
        None => Ok(()),
        Some(c) => Err(Error::ZeroPointOutOfRange {
            what: format!("zero_point[{c}] of an int32 dequantize (int32 has no zero point)"),
            value: params.zero_points()[c],
            qmin: 0,
            qmax: 0,
        }),
    }
}

/// Dequantizes an int32 tensor (onnxruntime's `DequantizeLinear` with int32 input, as a
/// convolution's or matmul's i32 accumulator): `y = f32(x) * s` per element, with `x`
/// converted to f32 (rounded to nearest even above 2^24) and then multiplied (rounded once
/// more); the same two roundings as the GPU's `f32(q) * s`.
///
/// `params` give one scale per tensor or per channel along `params.axis()`, with the same
/// shape and axis rules as [`dequantize`]. Their zero points must all be 0 (int32 has no
/// zero point); their qtype and range are ignored, so per-tensor or per-axis params built
/// with any range that contains 0 (for example `QType::I8.full_range()`) express an int32
/// tensor's scales.
///
/// # Errors
/// [`Error::ZeroPointOutOfRange`] for a non-zero zero point ([`check_int32_params`]);
/// [`Error::ShapeMismatch`] when `q` does not match `shape`; [`Error::SizeOverflow`] when
/// the shape's element count overflows; or the params' axis errors.
pub fn dequantize_i32(q: &[i32], shape: &[usize], params: &QuantParams) -> Result<Vec<f32>> {
    check_int32_params(params)?;
    check_tensor("dequantize_i32 input", q.len(), shape, params)?;
    Ok(q.iter()
        .enumerate()
        .map(|(i, &x)| x as f32 * params.scale(channel_of(i, shape, params.axis())))
        .collect())
}
