//! Tensor quantize and dequantize, per tensor or per axis: the CPU twins of
//! `shaders/quantize.wgsl` and `shaders/dequantize.wgsl`.

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
