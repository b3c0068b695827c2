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

use crate::error::{Error, Result, check_scale};

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
///
/// The fields are public (the GPU host reads them); a hand-built value must pass
/// [`QuantizedMultiplier::validate`] before a kernel may use it, and
/// `Requant` checking (done by the reference GEMM and by the GPU layer) calls it.
/// [`QuantizedMultiplier::new`] builds a checked one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantizedMultiplier {
    /// Fixed-point mantissa in `[2^30, 2^31 - 1]`, or 0 for a flushed multiplier.
    pub m0: i32,
    /// Power-of-two exponent (positive = left shift).
    pub shift: i32,
}

/// The smallest shift any kernel supports (TFLite: `shift >= -31`; a right shift of at most 31
/// in the double-rounding variant, `total = 31 - shift <= 62` in the single-rounding one).
pub const MIN_SHIFT: i32 = -31;

/// The largest shift the single-rounding kernels support (TFLite: `shift <= 30`, so that
/// `total = 31 - shift >= 1`). The double-rounding variant has no upper limit: its left shift
/// saturates (`x * 2^left` clamped to i32), which is what [`quantize_multiplier`] produces for
/// multipliers of 2^30 and more.
pub const MAX_SINGLE_ROUNDING_SHIFT: i32 = 30;

impl QuantizedMultiplier {
    /// A checked multiplier ([`QuantizedMultiplier::validate`]).
    ///
    /// # Errors
    /// As [`QuantizedMultiplier::validate`].
    pub fn new(m0: i32, shift: i32, rounding: FixedPointRounding) -> Result<Self> {
        let q = QuantizedMultiplier { m0, shift };
        q.validate(rounding)?;
        Ok(q)
    }

    /// Checks that the kernels of `rounding` compute this multiplier exactly as
    /// [`multiply_by_quantized_multiplier`]: `m0` is 0 (a flushed multiplier) or normalised in
    /// `[2^30, 2^31 - 1]` (non-negative: the kernels' 32×32 multiply takes `m0 >= 0`), and
    /// `shift` is in `[MIN_SHIFT, MAX_SINGLE_ROUNDING_SHIFT]` for single rounding or at least
    /// `MIN_SHIFT` for double rounding (whatever `m0`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the value and the allowed range.
    pub fn validate(&self, rounding: FixedPointRounding) -> Result<()> {
        let QuantizedMultiplier { m0, shift } = *self;
        if m0 != 0 && m0 < 1 << 30 {
            return Err(Error::InvalidConfig {
                what: "quantized multiplier m0".into(),
                value: m0.to_string(),
                reason: "must be 0 or in [2^30, 2^31 - 1] (a normalised non-negative mantissa)"
                    .into(),
            });
        }
        let max = match rounding {
            FixedPointRounding::Single => MAX_SINGLE_ROUNDING_SHIFT,
            FixedPointRounding::Double => i32::MAX,
        };
        if !(MIN_SHIFT..=max).contains(&shift) {
            return Err(Error::InvalidConfig {
                what: "quantized multiplier shift".into(),
                value: shift.to_string(),
                reason: format!(
                    "must be in [{MIN_SHIFT}, {max}] for {rounding:?} rounding (the range the kernels implement)"
                ),
            });
        }
        Ok(())
    }
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
/// `(2^31 - 1, 30)`. The result always passes [`QuantizedMultiplier::validate`].
///
/// # Errors
/// [`Error::InvalidConfig`] for a NaN, infinite or negative multiplier (TFLite asserts
/// these away; a requantization multiplier is a ratio of positive scales). `-0.0` is 0.
pub fn quantize_multiplier(
    multiplier: f64,
    rounding: FixedPointRounding,
) -> Result<QuantizedMultiplier> {
    if !(multiplier.is_finite() && multiplier >= 0.0) {
        return Err(Error::InvalidConfig {
            what: "real multiplier".into(),
            value: format!("{multiplier:e}"),
            reason: "must be finite and non-negative".into(),
        });
    }
    if multiplier == 0.0 {
        return Ok(QuantizedMultiplier { m0: 0, shift: 0 });
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
    Ok(QuantizedMultiplier {
        m0: q_fixed as i32,
        shift,
    })
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

/// gemmlowp `RoundingDivideByPOT`: `x / 2^exponent`, ties away from zero.
///
/// gemmlowp defines `0 <= exponent <= 31` (and asserts it); there this is gemmlowp bit for
/// bit. It is total: for a larger exponent the result is the same rule applied exactly, the
/// quotient `x / 2^exponent` rounded half away from zero, which is `-1` for `x = i32::MIN`,
/// `exponent = 32` (`-0.5` rounds away) and `0` in every other case. The kernels only see
/// exponents of at most 31 ([`QuantizedMultiplier::validate`]).
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    // In i64 every exponent up to 62 is exact; from 33 on the quotient rounds to 0, so
    // capping at 62 changes nothing.
    let e = exponent.min(62);
    let x = i64::from(x);
    let mask = (1i64 << e) - 1;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i64::from(x < 0);
    // |result| <= 2^31 / 2^e + 1, and for e = 0 it is x itself: it fits i32.
    ((x >> e) + i64::from(remainder > threshold)) as i32
}

/// TFLite `MultiplyByQuantizedMultiplier(int32 x, m0, shift)` in the chosen variant.
///
/// * Single: `(i64(x) * m0 + 2^(total - 1)) >> total` with `total = 31 - shift`
///   (arithmetic shift, ties toward +Inf), saturated to i32.
/// * Double: `RoundingDivideByPOT(SRDHM(sat(x * 2^left), m0), right)`.
///
/// TFLite defines `m0 >= 0` and `-31 <= shift <= 30` (it asserts them); inside that domain this
/// is TFLite bit for bit. Outside it the function is still total and never panics: each
/// variant's formula is evaluated exactly (unbounded integers) and saturated to i32. So for
/// single rounding a `shift > 30` gives `sat(x * m0 * 2^(shift - 31))` (no rounding needed)
/// and a `shift < -31` gives the rounded quotient, which is 0 for every `x`; for double
/// rounding a `shift < -31` divides by `2^-shift` as [`rounding_divide_by_pot`] defines it.
/// The kernels only receive multipliers that pass [`QuantizedMultiplier::validate`].
pub fn multiply_by_quantized_multiplier(
    x: i32,
    multiplier: QuantizedMultiplier,
    rounding: FixedPointRounding,
) -> i32 {
    let QuantizedMultiplier { m0, shift } = multiplier;
    match rounding {
        FixedPointRounding::Single => {
            // |x * m0| <= 2^62, so i128 holds it shifted left by up to 64.
            let product = i128::from(x) * i128::from(m0);
            let result = if shift > 31 {
                // Any non-zero product shifted by 33 or more saturates; cap the shift there.
                product << (shift - 31).min(64)
            } else {
                // total >= 0; beyond 64 the rounded quotient is 0 as it is at 64.
                let total = (31 - i64::from(shift)).min(64) as u32;
                if total == 0 {
                    product
                } else {
                    (product + (1i128 << (total - 1))) >> total
                }
            };
            result.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
        }
        FixedPointRounding::Double => {
            let left = shift.max(0) as u32;
            let right = (-i64::from(shift)).max(0).min(i64::from(u32::MAX)) as u32;
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
