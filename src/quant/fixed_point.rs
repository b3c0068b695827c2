//! TFLite / gemmlowp fixed-point requantization.
//!
//! A real multiplier `M` becomes `(m0, shift)` with `M ≈ m0 * 2^(shift - 31)` and
//! `m0 ∈ [2^30, 2^31 - 1]` ([`quantize_multiplier`]); an i32 accumulator is then scaled by
//! [`multiply_by_quantized_multiplier`] with one of TFLite's two compile-time variants.
//!
//! Where TFLite's C++ has undefined behaviour (a left shift that overflows i32 in the
//! double-rounding path, or a single-rounding result outside i32 when `M > 1`), this crate
//! saturates to i32, which is the exact value clamped, so a following activation clamp gives
//! the mathematically right output.

use crate::error::{Result, check_scale};

/// Which `MultiplyByQuantizedMultiplier` TFLite was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FixedPointRounding {
    /// `TFLITE_SINGLE_ROUNDING = 1`: one rounding, ties toward +Inf. LiteRT's reference
    /// kernels match this (NUMERICS.md, observed).
    #[default]
    Single,
    /// gemmlowp: `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^left, m0), right)`.
    Double,
}

/// A quantized multiplier: `M ≈ m0 * 2^(shift - 31)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantizedMultiplier {
    /// Fixed-point mantissa in `[2^30, 2^31 - 1]`, or 0 for a flushed multiplier.
    pub m0: i32,
    /// Power-of-two exponent (positive = left shift).
    pub shift: i32,
}

/// `frexp`: `x = q * 2^e` with `|q|` in `[0.5, 1)`, for finite non-zero `x`; `(0, 0)` for zero.
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        let (q, e) = frexp(x * 2f64.powi(64));
        return (q, e - 64);
    }
    let q = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (q, biased - 1022)
}

/// TFLite `QuantizeMultiplier(double, int32_t*, int*)`.
///
/// `m0 = round_away(q * 2^31)` from `frexp`; `m0 == 2^31` is halved with `shift + 1`;
/// `shift < -31` flushes to `(0, 0)`; with single rounding `shift > 30` saturates to
/// `(2^31 - 1, 30)`.
pub fn quantize_multiplier(multiplier: f64, rounding: FixedPointRounding) -> QuantizedMultiplier {
    if multiplier == 0.0 {
        return QuantizedMultiplier { m0: 0, shift: 0 };
    }
    let (q, mut shift) = frexp(multiplier);
    let mut q_fixed = (q * 2f64.powi(31)).round() as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    if rounding == FixedPointRounding::Single && shift > 30 {
        shift = 30;
        q_fixed = (1i64 << 31) - 1;
    }
    QuantizedMultiplier {
        m0: q_fixed as i32,
        shift,
    }
}

/// TFLite's per-tensor effective multiplier (`GetQuantizedConvolutionMultipler`):
/// `(double) f32(s_in * s_w) / (double) s_out`. The product is rounded to f32 first.
///
/// # Errors
/// [`crate::Error::InvalidScale`] when a scale or the f32 product is not normal.
pub fn tflite_per_tensor_multiplier(s_in: f32, s_w: f32, s_out: f32) -> Result<f64> {
    check_scale(|| "s_in".into(), s_in)?;
    check_scale(|| "s_w".into(), s_w)?;
    check_scale(|| "s_out".into(), s_out)?;
    let product = s_in * s_w;
    check_scale(|| "s_in * s_w".into(), product)?;
    Ok(f64::from(product) / f64::from(s_out))
}

/// TFLite's per-channel effective multiplier (`PopulateConvolutionQuantizationParams`):
/// `(double) s_in * (double) s_w / (double) s_out`, all in double.
///
/// # Errors
/// [`crate::Error::InvalidScale`] when a scale is not normal.
pub fn tflite_per_channel_multiplier(s_in: f32, s_w: f32, s_out: f32) -> Result<f64> {
    check_scale(|| "s_in".into(), s_in)?;
    check_scale(|| "s_w".into(), s_w)?;
    check_scale(|| "s_out".into(), s_out)?;
    Ok(f64::from(s_in) * f64::from(s_w) / f64::from(s_out))
}

/// gemmlowp `SaturatingRoundingDoublingHighMul` (ARM `VQRDMULH`):
/// `round(a * b / 2^31)`, ties toward +Inf for both signs, saturating the single overflow
/// case `a == b == i32::MIN`.
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // C++ '/' truncates toward zero, as Rust's does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: `x / 2^exponent`, ties away from zero, `0 <= exponent <= 31`.
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    debug_assert!(exponent <= 31);
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite `MultiplyByQuantizedMultiplier(int32 x, m0, shift)` in the chosen variant.
///
/// * Single: `(i64(x) * m0 + 2^(total - 1)) >> total` with `total = 31 - shift`
///   (arithmetic shift, ties toward +Inf), saturated to i32.
/// * Double: `RoundingDivideByPOT(SRDHM(sat(x * 2^left), m0), right)`.
pub fn multiply_by_quantized_multiplier(
    x: i32,
    multiplier: QuantizedMultiplier,
    rounding: FixedPointRounding,
) -> i32 {
    let QuantizedMultiplier { m0, shift } = multiplier;
    match rounding {
        FixedPointRounding::Single => {
            let total = (31 - shift) as u32; // shift ∈ [-31, 30] → total ∈ [1, 62]
            let round = 1i64 << (total - 1);
            let result = (i64::from(x) * i64::from(m0) + round) >> total;
            result.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
        }
        FixedPointRounding::Double => {
            let left = shift.max(0) as u32;
            let right = (-shift).max(0) as u32;
            // x * 2^left saturated to i32 (|x| < 2^31, so left >= 32 saturates any x != 0).
            let shifted = if left >= 32 {
                i64::from(x.signum()) * i64::from(i32::MAX) - i64::from(x < 0)
            } else {
                (i64::from(x) << left).clamp(i64::from(i32::MIN), i64::from(i32::MAX))
            };
            rounding_divide_by_pot(
                saturating_rounding_doubling_high_mul(shifted as i32, m0),
                right,
            )
        }
    }
}
