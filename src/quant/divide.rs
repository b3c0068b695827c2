//! Correctly rounded f32 division in 32-bit integer arithmetic.
//!
//! WGSL's f32 `/` is only accurate to 2.5 ULP, so bit-exact shader paths that need a
//! quotient (Onnx quantize `x / s`, dynamic scales `(max - min) / 255`, torch's `1 / s`)
//! call `div_f32_exact` from `shaders/common/divide.wgsl` instead. This is its CPU twin:
//! the same u32/i32 operations in the same order, so the two agree on every input.
//!
//! Result: the IEEE-754 binary32 quotient, rounded to nearest even, with gradual
//! underflow (subnormal inputs and results are honoured, never flushed), overflow to
//! ±Inf, and IEEE's special cases (x/0 = ±Inf, 0/0 = Inf/Inf = NaN, x/Inf = ±0).
//! The only difference from a CPU's `/` is the NaN payload: every NaN result is the
//! canonical quiet NaN `0x7fc00000`.

/// The canonical quiet NaN every NaN-producing division returns.
pub const CANONICAL_NAN_BITS: u32 = 0x7fc0_0000;

/// `a / b`, correctly rounded, computed with integer operations only.
pub fn div_f32_exact(a: f32, b: f32) -> f32 {
    f32::from_bits(div_f32_exact_bits(a.to_bits(), b.to_bits()))
}

/// Splits a finite non-zero f32's bits into a mantissa in `[2^23, 2^24)` and an unbiased
/// exponent, normalising subnormals: `value = mantissa * 2^(exponent - 23)`.
fn normalize_mantissa(biased_exponent: u32, fraction: u32) -> (u32, i32) {
    if biased_exponent != 0 {
        return (fraction | 0x0080_0000, biased_exponent as i32 - 127);
    }
    // Subnormal: shift the leading one up to bit 23 (fraction != 0 here).
    let shift = fraction.leading_zeros() - 8;
    (fraction << shift, -126 - shift as i32)
}

/// Bit-level form of [`div_f32_exact`] (the shader works on bit patterns).
pub fn div_f32_exact_bits(a: u32, b: u32) -> u32 {
    let sign = (a ^ b) & 0x8000_0000;
    let exp_a = (a >> 23) & 0xff;
    let exp_b = (b >> 23) & 0xff;
    let frac_a = a & 0x007f_ffff;
    let frac_b = b & 0x007f_ffff;
    let a_is_nan = exp_a == 0xff && frac_a != 0;
    let b_is_nan = exp_b == 0xff && frac_b != 0;
    let a_is_inf = exp_a == 0xff && frac_a == 0;
    let b_is_inf = exp_b == 0xff && frac_b == 0;
    let a_is_zero = (a & 0x7fff_ffff) == 0;
    let b_is_zero = (b & 0x7fff_ffff) == 0;

    if a_is_nan || b_is_nan || (a_is_inf && b_is_inf) || (a_is_zero && b_is_zero) {
        return CANONICAL_NAN_BITS;
    }
    if a_is_inf || b_is_zero {
        return sign | 0x7f80_0000;
    }
    if b_is_inf || a_is_zero {
        return sign;
    }

    let (mant_a, e_a) = normalize_mantissa(exp_a, frac_a);
    let (mant_b, e_b) = normalize_mantissa(exp_b, frac_b);
    // Biased exponent of the quotient; make the dividend >= divisor so the first
    // quotient bit is 1 and the quotient lies in [1, 2).
    let mut exponent = e_a - e_b + 127;
    let mut remainder = mant_a;
    if mant_a < mant_b {
        remainder = mant_a << 1;
        exponent -= 1;
    }
    // Restoring long division: 26 quotient bits (24 kept + guard + round), remainder < 2^25.
    let mut quotient = 0u32;
    for _ in 0..26 {
        quotient <<= 1;
        if remainder >= mant_b {
            remainder -= mant_b;
            quotient |= 1;
        }
        remainder <<= 1;
    }
    let sticky = remainder != 0;

    if exponent >= 255 {
        return sign | 0x7f80_0000;
    }
    // quotient has 26 significant bits; keep 24 for a normal result, fewer for a subnormal.
    let drop = if exponent >= 1 {
        2u32
    } else {
        (3 - exponent) as u32
    };
    if drop > 26 {
        // Below half the smallest subnormal: rounds to zero.
        return sign;
    }
    let kept = quotient >> drop;
    let dropped = quotient & ((1u32 << drop) - 1);
    let half = 1u32 << (drop - 1);
    let round_up = dropped > half || (dropped == half && (sticky || (kept & 1) == 1));
    // For a normal result `kept` carries the hidden bit, which adds one to the exponent
    // field, hence `exponent - 1`; a rounding carry propagates into the exponent (up to Inf).
    let exponent_field = if exponent >= 1 {
        (exponent - 1) as u32
    } else {
        0
    };
    sign | ((exponent_field << 23) + kept + u32::from(round_up))
}
