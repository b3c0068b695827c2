// Scalar quantize, specialised by host-injected constants:
//   SCALE_OP: 0 = f32(x / s) (exact division), 1 = f32(x * inv_s)
//   ROUND_MODE: 0 = half to even, 1 = half away from zero
//   NAN_TO_QMIN: true = NaN -> qmin, false = NaN -> zp
// CPU twin: src/quant/scalar.rs `quantize_value` (same order: scale, clamp, round, + zp).
#import common/divide

fn is_nan_bits(bits: u32) -> bool {
    return (bits & 0x7fffffffu) > 0x7f800000u;
}

// trunc(v) plus one step away from zero when the (exact) fraction is at least a half.
// Not floor(v + 0.5): for v = 0.5 - 2^-25 that sum rounds up to 1.0.
fn round_half_away_from_zero(v: f32) -> f32 {
    let whole = trunc(v);
    let fraction = v - whole;
    return whole + select(0.0, sign(v), abs(fraction) >= 0.5);
}

// x_bits: the input's bit pattern (read as u32 so no f32 register can flush or
// canonicalise it before the exact division).
fn quantize_value(x_bits: u32, scale_bits: u32, inv_scale: f32, zp: i32, qmin: i32, qmax: i32) -> i32 {
    var scaled: f32;
    if SCALE_OP == 0u {
        scaled = bitcast<f32>(div_f32_exact_bits(x_bits, scale_bits));
    } else {
        scaled = bitcast<f32>(x_bits) * inv_scale;
    }
    let lo = f32(qmin - zp);
    let hi = f32(qmax - zp);
    var clamped = select(scaled, lo, scaled < lo);
    clamped = select(clamped, hi, clamped > hi);
    var rounded: f32;
    if ROUND_MODE == 0u {
        rounded = round(clamped);
    } else {
        rounded = round_half_away_from_zero(clamped);
    }
    let q = i32(rounded) + zp;
    if is_nan_bits(x_bits) {
        return select(zp, qmin, NAN_TO_QMIN);
    }
    return q;
}
