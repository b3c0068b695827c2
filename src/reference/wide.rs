//! CPU twin of `shaders/common/wide.wgsl`: 64-bit arithmetic from u32 pieces and TFLite's
//! fixed-point requantization built on it, operation for operation as the shader does it.
//! The normative definition is [`crate::quant::fixed_point`] (i64); tests prove the two equal.
//!
//! A signed 64-bit value is `[low, high]`, two's complement.

use crate::quant::fixed_point::{
    FixedPointRounding, MAX_SINGLE_ROUNDING_SHIFT, MIN_SHIFT, QuantizedMultiplier,
    multiply_by_quantized_multiplier,
};

/// `a * b` as a 64-bit unsigned `[low, high]`, from 16-bit partial products.
pub fn mul_u32_wide(a: u32, b: u32) -> [u32; 2] {
    let (a_lo, a_hi) = (a & 0xffff, a >> 16);
    let (b_lo, b_hi) = (b & 0xffff, b >> 16);
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16) + (lh & 0xffff) + (hl & 0xffff);
    [
        (ll & 0xffff) | (mid << 16),
        hh.wrapping_add(lh >> 16)
            .wrapping_add(hl >> 16)
            .wrapping_add(mid >> 16),
    ]
}

/// Two's complement negation.
pub fn neg_wide(v: [u32; 2]) -> [u32; 2] {
    let lo = (!v[0]).wrapping_add(1);
    [lo, (!v[1]).wrapping_add(u32::from(lo == 0))]
}

/// Wrapping 64-bit addition.
pub fn add_wide(a: [u32; 2], b: [u32; 2]) -> [u32; 2] {
    let lo = a[0].wrapping_add(b[0]);
    [
        lo,
        a[1].wrapping_add(b[1]).wrapping_add(u32::from(lo < a[0])),
    ]
}

/// `i64(a) * i64(b)` for `b >= 0`.
pub fn mul_i32_by_nonneg(a: i32, b: i32) -> [u32; 2] {
    let magnitude = if a < 0 {
        (!(a as u32)).wrapping_add(1)
    } else {
        a as u32
    };
    let p = mul_u32_wide(magnitude, b as u32);
    if a < 0 { neg_wide(p) } else { p }
}

/// Sign of a wide value.
pub fn is_negative_wide(v: [u32; 2]) -> bool {
    v[1] & 0x8000_0000 != 0
}

/// Arithmetic shift right by `1 <= t <= 63` (`t = 0` is the value itself; above 63 the
/// sign fills both words).
pub fn shift_right_wide(v: [u32; 2], t: u32) -> [u32; 2] {
    let sign_word = if is_negative_wide(v) { u32::MAX } else { 0 };
    if t == 0 {
        v
    } else if t > 63 {
        [sign_word, sign_word]
    } else if t < 32 {
        [
            (v[0] >> t) | (v[1] << (32 - t)),
            ((v[1] as i32) >> t) as u32,
        ]
    } else {
        [((v[1] as i32) >> (t - 32)) as u32, sign_word]
    }
}

/// The wide value clamped to i32.
pub fn saturate_wide(v: [u32; 2]) -> i32 {
    let fits = v[1] == if (v[0] as i32) < 0 { u32::MAX } else { 0 };
    if fits {
        v[0] as i32
    } else if is_negative_wide(v) {
        i32::MIN
    } else {
        i32::MAX
    }
}

/// `2^e` as a wide value, `0 <= e <= 63` (0 above: the bit leaves the 64-bit value).
pub fn power_of_two_wide(e: u32) -> [u32; 2] {
    if e >= 64 {
        [0, 0]
    } else if e < 32 {
        [1 << e, 0]
    } else {
        [0, 1 << (e - 32)]
    }
}

/// Single rounding: `(x * m0 + 2^(total-1)) >> total`, `total = 31 - shift`, saturated.
///
/// The shader's domain is that of a validated multiplier
/// ([`crate::quant::fixed_point::QuantizedMultiplier::validate`]): `m0` is 0 or in
/// `[2^30, 2^31 - 1]` and `-31 <= shift <= 30`. Outside it this twin does not mirror the
/// shader (which never sees such values) but returns the normative
/// [`multiply_by_quantized_multiplier`] result, so it never panics.
pub fn mbqm_single(x: i32, m0: i32, shift: i32) -> i32 {
    if m0 < 0 || !(MIN_SHIFT..=MAX_SINGLE_ROUNDING_SHIFT).contains(&shift) {
        return multiply_by_quantized_multiplier(
            x,
            QuantizedMultiplier { m0, shift },
            FixedPointRounding::Single,
        );
    }
    let total = (31 - shift) as u32;
    let product = add_wide(mul_i32_by_nonneg(x, m0), power_of_two_wide(total - 1));
    saturate_wide(shift_right_wide(product, total))
}

/// `SaturatingRoundingDoublingHighMul(a, b)` for `b >= 0`.
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = mul_i32_by_nonneg(a, b);
    let nudge = if is_negative_wide(ab) {
        [0xc000_0001, 0xffff_ffff]
    } else {
        [0x4000_0000, 0]
    };
    let mut v = add_wide(ab, nudge);
    if is_negative_wide(v) {
        v = add_wide(v, [0x7fff_ffff, 0]);
    }
    shift_right_wide(v, 31)[0] as i32
}

/// `RoundingDivideByPOT(x, e)`, `0 <= e <= 31` (the shader's domain); a larger `e` gives
/// [`crate::quant::fixed_point::rounding_divide_by_pot`]'s result.
pub fn rdbpot(x: i32, e: u32) -> i32 {
    if e > 31 {
        return crate::quant::fixed_point::rounding_divide_by_pot(x, e);
    }
    let mask = ((1u64 << e) - 1) as u32 as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> e) + i32::from(remainder > threshold)
}

/// `x * 2^left` saturated to i32.
pub fn saturating_shift_left(x: i32, left: u32) -> i32 {
    if x == 0 || left == 0 {
        return x;
    }
    if left >= 31 {
        return if x < 0 { i32::MIN } else { i32::MAX };
    }
    let limit = i32::MAX >> left;
    let lowest = i32::MIN >> left;
    if x > limit {
        i32::MAX
    } else if x < lowest {
        i32::MIN
    } else {
        x << left
    }
}

/// gemmlowp double rounding.
///
/// As [`mbqm_single`]: outside a validated multiplier's domain (`m0 < 0` or
/// `shift < -31`) it returns the normative [`multiply_by_quantized_multiplier`] result.
pub fn mbqm_double(x: i32, m0: i32, shift: i32) -> i32 {
    if m0 < 0 || shift < MIN_SHIFT {
        return multiply_by_quantized_multiplier(
            x,
            QuantizedMultiplier { m0, shift },
            FixedPointRounding::Double,
        );
    }
    let left = shift.max(0) as u32;
    let right = (-shift).max(0) as u32;
    rdbpot(srdhm(saturating_shift_left(x, left), m0), right)
}
