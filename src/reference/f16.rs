//! f32 → f16 rounding in integer arithmetic: the CPU twin of `f32_to_f16_bits` in
//! `shaders/common/pack.wgsl`. The shader needs no `shader-f16` feature and its result cannot
//! vary by driver; it equals `half::f16::from_f32` on every input (round to nearest even,
//! gradual underflow, overflow to ±Inf, NaN kept quiet with the top payload bits).

/// The f16 bit pattern nearest to `value` (ties to even).
pub fn f32_to_f16_bits(value: f32) -> u16 {
    let x = value.to_bits();
    let sign = (x & 0x8000_0000) >> 16;
    let exponent = x & 0x7f80_0000;
    let mantissa = x & 0x007f_ffff;
    if exponent == 0x7f80_0000 {
        let nan_bit = if mantissa == 0 { 0 } else { 0x0200 };
        return (sign | 0x7c00 | nan_bit | (mantissa >> 13)) as u16;
    }
    let half_exponent = (exponent >> 23) as i32 - 127 + 15;
    if half_exponent >= 0x1f {
        return (sign | 0x7c00) as u16;
    }
    if half_exponent <= 0 {
        // Subnormal f16 (or zero): shift the full significand down, rounding to nearest even.
        if 14 - half_exponent > 24 {
            return sign as u16;
        }
        let significand = mantissa | 0x0080_0000;
        let shift = (14 - half_exponent) as u32;
        let mut half_mantissa = significand >> shift;
        let round_bit = 1u32 << (shift - 1);
        if (significand & round_bit) != 0 && (significand & (3 * round_bit - 1)) != 0 {
            half_mantissa += 1;
        }
        return (sign | half_mantissa) as u16;
    }
    let bits = sign | ((half_exponent as u32) << 10) | (mantissa >> 13);
    let round_bit = 0x0000_1000;
    // Round up when above half, or exactly half with an odd result; a carry rolls into the
    // exponent (up to Inf), which is IEEE's behaviour.
    if (mantissa & round_bit) != 0 && (mantissa & (3 * round_bit - 1)) != 0 {
        (bits + 1) as u16
    } else {
        bits as u16
    }
}
