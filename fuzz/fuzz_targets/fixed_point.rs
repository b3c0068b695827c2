//! quantize_multiplier and both MultiplyByQuantizedMultiplier variants against a wide-integer
//! oracle, and the shader's u32-piece twin against the i64 normative version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_quant::quant::fixed_point::{
    FixedPointRounding, QuantizedMultiplier, multiply_by_quantized_multiplier, quantize_multiplier,
};
use wgpu_quant::reference::wide::{mbqm_double, mbqm_single};

fn oracle_single(x: i32, m: QuantizedMultiplier) -> i32 {
    let t = 31 - m.shift;
    let v = (i128::from(x) * i128::from(m.m0) + (1i128 << (t - 1))) >> t;
    v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

fn oracle_double(x: i32, m: QuantizedMultiplier) -> i32 {
    let shifted =
        (i128::from(x) << m.shift.max(0)).clamp(i128::from(i32::MIN), i128::from(i32::MAX));
    let high = if shifted == i128::from(i32::MIN) && m.m0 == i32::MIN {
        i128::from(i32::MAX)
    } else {
        (shifted * i128::from(m.m0) + (1 << 30)).div_euclid(1 << 31)
    };
    let right = (-m.shift).max(0);
    if right == 0 {
        return high as i32;
    }
    let d = 1i128 << right;
    let (q, r) = (high.div_euclid(d), high.rem_euclid(d));
    (if 2 * r > d || (2 * r == d && high >= 0) {
        q + 1
    } else {
        q
    }) as i32
}

fuzz_target!(|data: (i32, u64, i32, i32)| {
    let (x, bits, raw_m0, raw_shift) = data;
    // Any hand-built multiplier: validate decides, and nothing panics; the shader twin equals
    // the normative function everywhere (inside the kernels' domain by construction, outside
    // by definition).
    for rounding in [FixedPointRounding::Single, FixedPointRounding::Double] {
        let m = QuantizedMultiplier {
            m0: raw_m0,
            shift: raw_shift,
        };
        let valid = m.validate(rounding).is_ok();
        let normalised = raw_m0 == 0 || raw_m0 >= 1 << 30;
        let shift_ok =
            raw_shift >= -31 && (rounding == FixedPointRounding::Double || raw_shift <= 30);
        assert_eq!(valid, normalised && shift_ok, "{m:?} {rounding:?}");
        let got = multiply_by_quantized_multiplier(x, m, rounding);
        match rounding {
            FixedPointRounding::Single => {
                assert_eq!(mbqm_single(x, raw_m0, raw_shift), got);
                if valid {
                    assert_eq!(got, oracle_single(x, m));
                }
            }
            FixedPointRounding::Double => {
                assert_eq!(mbqm_double(x, raw_m0, raw_shift), got);
                if valid && raw_shift <= 62 {
                    assert_eq!(got, oracle_double(x, m));
                }
            }
        }
    }
    // Non-finite and negative reals are typed errors.
    let any_real = f64::from_bits(bits);
    if !(any_real.is_finite() && any_real >= 0.0) {
        assert!(quantize_multiplier(any_real, FixedPointRounding::Single).is_err());
    }
    // Every input becomes a positive multiplier in [2^-40, 2^21): exponent from the top bits,
    // mantissa from the rest, so no run is spent on NaN, Inf or out-of-domain values.
    let exponent = ((bits >> 52) % 61) as i64 - 40;
    let real = f64::from_bits((((exponent + 1023) as u64) << 52) | (bits & ((1u64 << 52) - 1)));
    for rounding in [FixedPointRounding::Single, FixedPointRounding::Double] {
        let m = quantize_multiplier(real, rounding).expect("a positive finite multiplier");
        assert!(m.validate(rounding).is_ok(), "{real} -> {m:?}");
        if m.m0 == 0 {
            continue;
        }
        assert!(m.m0 >= 1 << 30, "{real} -> {m:?}");
        let back = f64::from(m.m0) * 2f64.powi(m.shift - 31);
        if rounding == FixedPointRounding::Double || m.shift < 30 {
            assert!(
                (back - real).abs() <= real * 2f64.powi(-30),
                "{real} -> {m:?}"
            );
        }
        if m.shift < -31 || m.shift > 30 {
            continue; // outside TFLite's MBQM domain
        }
        let got = multiply_by_quantized_multiplier(x, m, rounding);
        match rounding {
            FixedPointRounding::Single => {
                assert_eq!(got, oracle_single(x, m));
                assert_eq!(mbqm_single(x, m.m0, m.shift), got);
            }
            FixedPointRounding::Double => {
                assert_eq!(got, oracle_double(x, m));
                assert_eq!(mbqm_double(x, m.m0, m.shift), got);
            }
        }
    }
});
