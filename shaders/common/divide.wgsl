// Correctly rounded f32 division in u32/i32 arithmetic.
// CPU twin: src/quant/divide.rs (same names, same operations, same order).
// WGSL's f32 '/' is only accurate to 2.5 ULP; bit-exact paths use this instead.

const CANONICAL_NAN_BITS: u32 = 0x7fc00000u;

// Mantissa in [2^23, 2^24) and unbiased exponent of a finite non-zero f32.
fn normalize_mantissa(biased_exponent: u32, fraction: u32) -> vec2<i32> {
    if biased_exponent != 0u {
        return vec2<i32>(i32(fraction | 0x00800000u), i32(biased_exponent) - 127);
    }
    let shift = countLeadingZeros(fraction) - 8u;
    return vec2<i32>(i32(fraction << shift), -126 - i32(shift));
}

fn div_f32_exact_bits(a: u32, b: u32) -> u32 {
    let sign = (a ^ b) & 0x80000000u;
    let exp_a = (a >> 23u) & 0xffu;
    let exp_b = (b >> 23u) & 0xffu;
    let frac_a = a & 0x007fffffu;
    let frac_b = b & 0x007fffffu;
    let a_is_nan = exp_a == 0xffu && frac_a != 0u;
    let b_is_nan = exp_b == 0xffu && frac_b != 0u;
    let a_is_inf = exp_a == 0xffu && frac_a == 0u;
    let b_is_inf = exp_b == 0xffu && frac_b == 0u;
    let a_is_zero = (a & 0x7fffffffu) == 0u;
    let b_is_zero = (b & 0x7fffffffu) == 0u;

    if a_is_nan || b_is_nan || (a_is_inf && b_is_inf) || (a_is_zero && b_is_zero) {
        return CANONICAL_NAN_BITS;
    }
    if a_is_inf || b_is_zero {
        return sign | 0x7f800000u;
    }
    if b_is_inf || a_is_zero {
        return sign;
    }

    let na = normalize_mantissa(exp_a, frac_a);
    let nb = normalize_mantissa(exp_b, frac_b);
    let mant_a = u32(na.x);
    let mant_b = u32(nb.x);
    var exponent = na.y - nb.y + 127;
    var remainder = mant_a;
    if mant_a < mant_b {
        remainder = mant_a << 1u;
        exponent -= 1;
    }
    var quotient = 0u;
    for (var i = 0u; i < 26u; i++) {
        quotient = quotient << 1u;
        if remainder >= mant_b {
            remainder -= mant_b;
            quotient |= 1u;
        }
        remainder = remainder << 1u;
    }
    let sticky = remainder != 0u;

    if exponent >= 255 {
        return sign | 0x7f800000u;
    }
    var drop = 2u;
    if exponent < 1 {
        drop = u32(3 - exponent);
    }
    if drop > 26u {
        return sign;
    }
    let kept = quotient >> drop;
    let dropped = quotient & ((1u << drop) - 1u);
    let half = 1u << (drop - 1u);
    let round_up = dropped > half || (dropped == half && (sticky || (kept & 1u) == 1u));
    var exponent_field = 0u;
    if exponent >= 1 {
        exponent_field = u32(exponent - 1);
    }
    return sign | ((exponent_field << 23u) + kept + select(0u, 1u, round_up));
}
