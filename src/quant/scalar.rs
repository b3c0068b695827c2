//! Scalar quantize and dequantize, each convention's formula to the operation.
//!
//! Quantize (all conventions): `q = clamp(round(x ⊘ s), qmin - zp, qmax - zp) + zp`, where
//! * `⊘` is `f32(x / s)` (Onnx, TfLite; a correctly rounded division) or
//!   `f32(x * f32(1 / s))` (PyTorch; the reciprocal is rounded once, on the host);
//! * the clamp happens in the float domain, before the conversion to an integer, so ±Inf
//!   and huge values saturate instead of overflowing a cast;
//! * `round` is half-to-even (Onnx, PyTorch) or half-away-from-zero (TfLite), applied
//!   before the zero point is added (onnxruntime and fbgemm round first; with an odd zero
//!   point that matters for ties);
//! * NaN becomes `qmin` (Onnx) or `zp` (PyTorch, TfLite), chosen with a select;
//! * -0.0 behaves as 0.0, and subnormal inputs are honoured (they round to 0 for any
//!   valid scale, since `s` is normal and `|x / s| < 1/2`).
//!
//! Because the clamp bounds are integers, clamping before or after rounding gives the
//! same integer, which is why torch's "round, add zp, then clamp" is the same function.
//!
//! Dequantize: `f32(f32(q - zp) * s)`, one rounding, in every convention.

use crate::quant::convention::{Convention, NanPolicy, RoundMode, ScaleOp};
use crate::quant::divide::div_f32_exact;

/// Round half to even, exactly (`nearbyint` under the default rounding mode).
pub fn round_half_to_even(v: f32) -> f32 {
    v.round_ties_even()
}

/// Round half away from zero, exactly (`std::round`, `TfLiteRound`).
/// The same operations as the shader's `round_half_away_from_zero`: `trunc(v)` plus one step
/// away from zero when the (exact) fraction is at least a half.
pub fn round_half_away_from_zero(v: f32) -> f32 {
    let whole = v.trunc();
    let fraction = v - whole;
    whole
        + if fraction.abs() >= 0.5 {
            v.signum()
        } else {
            0.0
        }
}

/// The value `x ⊘ s` is scaled by before rounding: `1 / s` for the reciprocal convention.
/// Computed once on the host; the shader receives it as a uniform.
pub fn reciprocal_scale(scale: f32) -> f32 {
    div_f32_exact(1.0, scale)
}

/// `x ⊘ s` under `convention` (the division is the exact routine, equal to IEEE `/`).
pub fn scale_value(convention: Convention, x: f32, scale: f32) -> f32 {
    match convention.scale_op() {
        ScaleOp::Divide => div_f32_exact(x, scale),
        ScaleOp::MultiplyByReciprocal => x * reciprocal_scale(scale),
    }
}

/// Quantizes one value. `qmin`/`qmax` are the clamp range; `zp` must lie inside it.
///
/// The order of operations is normative and the shader `quantize_value` copies it. Outside
/// that domain (hand-picked i32 extremes, `zp` outside the range) the function still never
/// panics: the integer steps are done in i64 and the result is clamped to `[qmin, qmax]`,
/// which inside the domain changes nothing (the rounded value already lies in
/// `[qmin - zp, qmax - zp]`).
pub fn quantize_value(
    convention: Convention,
    x: f32,
    scale: f32,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
) -> i32 {
    let scaled = scale_value(convention, x, scale);
    // In i64 so that no pair of i32 overflows; the same integer converts to the same f32.
    let lo = (i64::from(qmin) - i64::from(zero_point)) as f32;
    let hi = (i64::from(qmax) - i64::from(zero_point)) as f32;
    // Comparisons, not f32 min/max, so NaN cannot leak through a backend-defined min/max.
    let clamped = if scaled < lo {
        lo
    } else if scaled > hi {
        hi
    } else {
        scaled
    };
    let rounded = match convention.round_mode() {
        RoundMode::HalfToEven => round_half_to_even(clamped),
        RoundMode::HalfAwayFromZero => round_half_away_from_zero(clamped),
    };
    // `rounded` is integral and finite (clamped above, or NaN, handled below): its i64 value
    // is exact up to 2^63, and `as` saturates beyond.
    let q = (rounded as i64 + i64::from(zero_point))
        .max(i64::from(qmin))
        .min(i64::from(qmax)) as i32;
    if x.is_nan() {
        match convention.nan_policy() {
            NanPolicy::ToQmin => qmin,
            NanPolicy::ToZeroPoint => zero_point,
        }
    } else {
        q
    }
}

/// Dequantizes one value: `f32(f32(q - zp) * s)`, one correctly rounded product (so with a
/// scale near `f32::MAX / 255` the ends of the range overflow to ±Inf, as IEEE requires).
pub fn dequantize_value(q: i32, scale: f32, zero_point: i32) -> f32 {
    // In i64 so that no pair of i32 overflows; the same integer converts to the same f32.
    (i64::from(q) - i64::from(zero_point)) as f32 * scale
}
