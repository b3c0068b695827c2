// Byte packing and the integer f32 -> f16 rounding.
// CPU twins: src/quant/pack.rs, src/reference/f16.rs `f32_to_f16_bits`.

// Byte `j % 4` of word `j / 4`, little-endian; a storage byte of an i8 or u8 value.
fn storage_byte(q: i32) -> u32 {
    return u32(q) & 0xffu;
}

fn f32_to_f16_bits(x: u32) -> u32 {
    let sign = (x & 0x80000000u) >> 16u;
    let exponent = x & 0x7f800000u;
    let mantissa = x & 0x007fffffu;
    if exponent == 0x7f800000u {
        let nan_bit = select(0x0200u, 0u, mantissa == 0u);
        return sign | 0x7c00u | nan_bit | (mantissa >> 13u);
    }
    let half_exponent = i32(exponent >> 23u) - 127 + 15;
    if half_exponent >= 0x1f {
        return sign | 0x7c00u;
    }
    if half_exponent <= 0 {
        if 14 - half_exponent > 24 {
            return sign;
        }
        let significand = mantissa | 0x00800000u;
        let shift = u32(14 - half_exponent);
        var half_mantissa = significand >> shift;
        let round_bit = 1u << (shift - 1u);
        if (significand & round_bit) != 0u && (significand & (3u * round_bit - 1u)) != 0u {
            half_mantissa += 1u;
        }
        return sign | half_mantissa;
    }
    let bits = sign | (u32(half_exponent) << 10u) | (mantissa >> 13u);
    let round_bit = 0x00001000u;
    if (mantissa & round_bit) != 0u && (mantissa & (3u * round_bit - 1u)) != 0u {
        return bits + 1u;
    }
    return bits;
}
