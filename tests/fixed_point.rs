//! TFLite fixed point: the worked example, tie rules, QuantizeMultiplier edges, and both
//! MultiplyByQuantizedMultiplier variants against a wide-integer oracle.

use proptest::prelude::*;
use wgpu_quant::quant::fixed_point::{
    FixedPointRounding, QuantizedMultiplier, frexp, multiply_by_quantized_multiplier,
    quantize_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
    tflite_per_channel_multiplier, tflite_per_tensor_multiplier,
};

const fn qm(m0: i32, shift: i32) -> QuantizedMultiplier {
    QuantizedMultiplier { m0, shift }
}

/// NUMERICS.md: acc = -12505, m0 = 1417775097, shift = -7 (exact value -64.4987).
/// Double rounding: SRDHM = -8256, then -8256 / 128 = -64.5 rounds away to -65.
/// Single rounding gives -64.
#[test]
fn numerics_md_example_minus_65_vs_minus_64() {
    let m = qm(1_417_775_097, -7);
    assert_eq!(saturating_rounding_doubling_high_mul(-12505, m.m0), -8256);
    assert_eq!(rounding_divide_by_pot(-8256, 7), -65);
    assert_eq!(
        multiply_by_quantized_multiplier(-12505, m, FixedPointRounding::Double),
        -65
    );
    assert_eq!(
        multiply_by_quantized_multiplier(-12505, m, FixedPointRounding::Single),
        -64
    );
}

#[test]
fn srdhm_ties_go_toward_positive_infinity() {
    // a*b / 2^31 = ±0.5 and ±1.5 exactly.
    assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1), 1); // 0.5 -> 1
    assert_eq!(saturating_rounding_doubling_high_mul(-(1 << 30), 1), 0); // -0.5 -> 0
    assert_eq!(saturating_rounding_doubling_high_mul(3 << 29, 2), 2); // 1.5 -> 2
    assert_eq!(saturating_rounding_doubling_high_mul(-(3 << 29), 2), -1); // -1.5 -> -1
    // The single overflow case saturates.
    assert_eq!(
        saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
        i32::MAX
    );
    assert_eq!(
        saturating_rounding_doubling_high_mul(i32::MIN, i32::MAX),
        -i32::MAX
    );
}

#[test]
fn rdbpot_ties_go_away_from_zero() {
    assert_eq!(rounding_divide_by_pot(5, 1), 3); // 2.5 -> 3
    assert_eq!(rounding_divide_by_pot(-5, 1), -3); // -2.5 -> -3
    assert_eq!(rounding_divide_by_pot(6, 2), 2); // 1.5 -> 2
    assert_eq!(rounding_divide_by_pot(-6, 2), -2); // -1.5 -> -2
    assert_eq!(rounding_divide_by_pot(-7, 2), -2); // -1.75 -> -2
    assert_eq!(rounding_divide_by_pot(7, 0), 7);
    assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
    assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
}

#[test]
fn quantize_multiplier_edges() {
    use FixedPointRounding::*;
    assert_eq!(quantize_multiplier(0.0, Single), qm(0, 0));
    assert_eq!(quantize_multiplier(0.5, Single), qm(1 << 30, 0));
    assert_eq!(quantize_multiplier(1.0, Single), qm(1 << 30, 1));
    assert_eq!(quantize_multiplier(0.25, Double), qm(1 << 30, -1));
    // q * 2^31 rounds up to 2^31: halved, shift + 1.
    let just_below_one = 1.0 - 2f64.powi(-40);
    assert_eq!(quantize_multiplier(just_below_one, Single), qm(1 << 30, 1));
    // Ties round away from zero (std::round): q = 0.5 + 2^-32 -> 2^30 + 0.5 -> 2^30 + 1.
    assert_eq!(
        quantize_multiplier(0.5 + 2f64.powi(-32), Single),
        qm((1 << 30) + 1, 0)
    );
    // Below 2^-32 the multiplier is flushed.
    assert_eq!(quantize_multiplier(2f64.powi(-33), Single), qm(0, 0));
    assert_eq!(
        quantize_multiplier(2f64.powi(-32), Single),
        qm(1 << 30, -31)
    );
    // Single rounding saturates shifts above 30; double rounding keeps them.
    assert_eq!(quantize_multiplier(2f64.powi(40), Single), qm(i32::MAX, 30));
    assert_eq!(quantize_multiplier(2f64.powi(40), Double), qm(1 << 30, 41));
    assert_eq!(frexp(8.0), (0.5, 4));
    assert_eq!(frexp(f64::from_bits(1)), (0.5, -1073));
}

#[test]
fn per_tensor_and_per_channel_multipliers_differ_as_tflite_does() {
    // Per tensor rounds s_in * s_w to f32 first; per channel keeps the product in double.
    let (s_in, s_w, s_out) = (0.1f32, 0.3f32, 0.7f32);
    let per_tensor = tflite_per_tensor_multiplier(s_in, s_w, s_out).unwrap();
    let per_channel = tflite_per_channel_multiplier(s_in, s_w, s_out).unwrap();
    assert_eq!(per_tensor, f64::from(s_in * s_w) / f64::from(s_out));
    assert_eq!(
        per_channel,
        f64::from(s_in) * f64::from(s_w) / f64::from(s_out)
    );
    assert_ne!(per_tensor, per_channel);
    assert!(tflite_per_tensor_multiplier(1e-30, 1e-20, 1.0).is_err()); // product subnormal
    assert!(tflite_per_channel_multiplier(0.0, 1.0, 1.0).is_err());
}

/// Wide-integer oracle for single rounding: floor((x * m0 + 2^(t-1)) / 2^t), saturated.
fn oracle_single(x: i32, m: QuantizedMultiplier) -> i32 {
    let t = 31 - m.shift;
    let v = (i128::from(x) * i128::from(m.m0) + (1i128 << (t - 1))) >> t;
    v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

/// Wide-integer oracle for double rounding, written from gemmlowp's definitions.
fn oracle_double(x: i32, m: QuantizedMultiplier) -> i32 {
    let left = m.shift.max(0);
    let right = (-m.shift).max(0);
    let shifted = (i128::from(x) << left).clamp(i128::from(i32::MIN), i128::from(i32::MAX));
    let ab = shifted * i128::from(m.m0);
    let high = if shifted == i128::from(i32::MIN) && m.m0 == i32::MIN {
        i128::from(i32::MAX)
    } else {
        // round(ab / 2^31), ties toward +inf: floor((ab + 2^30) / 2^31)
        (ab + (1 << 30)).div_euclid(1 << 31)
    };
    if right == 0 {
        return high as i32;
    }
    // round(high / 2^right), ties away from zero
    let d = 1i128 << right;
    let q = high.div_euclid(d);
    let r = high.rem_euclid(d);
    let twice = 2 * r;
    let rounded = if twice > d || (twice == d && high >= 0) {
        q + 1
    } else {
        q
    };
    rounded as i32
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn mbqm_matches_wide_oracle(
        x in any::<i32>(),
        m0 in (1i32 << 30)..=i32::MAX,
        shift in -31i32..=30,
    ) {
        let m = qm(m0, shift);
        prop_assert_eq!(multiply_by_quantized_multiplier(x, m, FixedPointRounding::Single), oracle_single(x, m));
        prop_assert_eq!(multiply_by_quantized_multiplier(x, m, FixedPointRounding::Double), oracle_double(x, m));
    }

    #[test]
    fn quantize_multiplier_is_accurate(bits in 0x3000_0000_0000_0000u64..0x4070_0000_0000_0000u64) {
        let real = f64::from_bits(bits);
        let m = quantize_multiplier(real, FixedPointRounding::Double);
        if m.m0 != 0 {
            prop_assert!((1 << 30..=i32::MAX).contains(&m.m0));
            let back = f64::from(m.m0) * 2f64.powi(m.shift - 31);
            prop_assert!((back - real).abs() <= real * 2f64.powi(-30), "{real} -> {m:?}");
        }
    }
}

mod wide_twin {
    //! The u32-piece twin of the shader's fixed point equals the normative i64 version.
    use proptest::prelude::*;
    use wgpu_quant::quant::fixed_point::{
        FixedPointRounding, QuantizedMultiplier, multiply_by_quantized_multiplier,
    };
    use wgpu_quant::reference::wide::{mbqm_double, mbqm_single, mul_u32_wide};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn wide_pieces_equal_i64(
            x in any::<i32>(),
            m0 in prop_oneof![Just(0i32), (1i32 << 30)..=i32::MAX],
            shift in -31i32..=30,
            a in any::<u32>(), b in any::<u32>(),
        ) {
            let p = mul_u32_wide(a, b);
            prop_assert_eq!(u64::from(p[0]) | u64::from(p[1]) << 32, u64::from(a) * u64::from(b));
            let m = QuantizedMultiplier { m0, shift };
            prop_assert_eq!(mbqm_single(x, m0, shift), multiply_by_quantized_multiplier(x, m, FixedPointRounding::Single));
            prop_assert_eq!(mbqm_double(x, m0, shift), multiply_by_quantized_multiplier(x, m, FixedPointRounding::Double));
        }
    }

    #[test]
    fn extremes() {
        for x in [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX] {
            for m0 in [0, 1 << 30, i32::MAX] {
                for shift in [-31, -1, 0, 1, 30] {
                    let m = QuantizedMultiplier { m0, shift };
                    assert_eq!(
                        mbqm_single(x, m0, shift),
                        multiply_by_quantized_multiplier(x, m, FixedPointRounding::Single)
                    );
                    assert_eq!(
                        mbqm_double(x, m0, shift),
                        multiply_by_quantized_multiplier(x, m, FixedPointRounding::Double)
                    );
                }
            }
        }
    }
}
