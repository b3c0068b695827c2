//! TFLite fixed point: the worked example, tie rules, QuantizeMultiplier edges, and both
//! MultiplyByQuantizedMultiplier variants against a wide-integer oracle.

use proptest::prelude::*;
use wgpu_quant::Error;
use wgpu_quant::quant::fixed_point::{
    FixedPointRounding, QuantizedMultiplier, frexp, multiply_by_quantized_multiplier,
    quantize_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
    tflite_per_channel_multiplier, tflite_per_tensor_multiplier,
};
use wgpu_quant::quant::fixed_point::{MAX_SINGLE_ROUNDING_SHIFT, MIN_SHIFT};

const fn qm(m0: i32, shift: i32) -> QuantizedMultiplier {
    QuantizedMultiplier { m0, shift }
}

fn qmul(real: f64, rounding: FixedPointRounding) -> QuantizedMultiplier {
    quantize_multiplier(real, rounding).unwrap()
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
    assert_eq!(qmul(0.0, Single), qm(0, 0));
    assert_eq!(qmul(0.5, Single), qm(1 << 30, 0));
    assert_eq!(qmul(1.0, Single), qm(1 << 30, 1));
    assert_eq!(qmul(0.25, Double), qm(1 << 30, -1));
    // q * 2^31 rounds up to 2^31: halved, shift + 1.
    let just_below_one = 1.0 - 2f64.powi(-40);
    assert_eq!(qmul(just_below_one, Single), qm(1 << 30, 1));
    // Ties round away from zero (std::round): q = 0.5 + 2^-32 -> 2^30 + 0.5 -> 2^30 + 1.
    assert_eq!(qmul(0.5 + 2f64.powi(-32), Single), qm((1 << 30) + 1, 0));
    // Below 2^-32 the multiplier is flushed.
    assert_eq!(qmul(2f64.powi(-33), Single), qm(0, 0));
    assert_eq!(qmul(2f64.powi(-32), Single), qm(1 << 30, -31));
    // Single rounding saturates shifts above 30; double rounding keeps them.
    assert_eq!(qmul(2f64.powi(40), Single), qm(i32::MAX, 30));
    assert_eq!(qmul(2f64.powi(40), Double), qm(1 << 30, 41));
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
        let m = quantize_multiplier(real, FixedPointRounding::Double).unwrap();
        prop_assert!(m.validate(FixedPointRounding::Double).is_ok());
        let single = quantize_multiplier(real, FixedPointRounding::Single).unwrap();
        prop_assert!(single.validate(FixedPointRounding::Single).is_ok(), "{real} -> {single:?}");
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

    /// Outside the shader's domain (never sent to a kernel: `validate` refuses it) the twin
    /// returns the normative result instead of panicking on a wrapped shift.
    #[test]
    fn outside_the_kernel_domain_the_twin_is_the_normative_function() {
        use wgpu_quant::reference::wide::{power_of_two_wide, rdbpot, shift_right_wide};
        for x in [i32::MIN, -7, -1, 0, 1, 7, i32::MAX] {
            for m0 in [i32::MIN, -1, 0, 1, 1 << 30, i32::MAX] {
                for shift in [i32::MIN, -64, -32, -31, 0, 30, 31, 32, 40, 64, i32::MAX] {
                    let m = QuantizedMultiplier { m0, shift };
                    assert_eq!(
                        mbqm_single(x, m0, shift),
                        multiply_by_quantized_multiplier(x, m, FixedPointRounding::Single),
                        "{x} {m0} {shift}"
                    );
                    assert_eq!(
                        mbqm_double(x, m0, shift),
                        multiply_by_quantized_multiplier(x, m, FixedPointRounding::Double),
                        "{x} {m0} {shift}"
                    );
                }
            }
            for e in [32, 40, 63, 64, u32::MAX] {
                assert_eq!(
                    rdbpot(x, e),
                    wgpu_quant::quant::fixed_point::rounding_divide_by_pot(x, e)
                );
            }
        }
        assert_eq!(power_of_two_wide(63), [0, 1 << 31]);
        assert_eq!(power_of_two_wide(64), [0, 0]);
        assert_eq!(shift_right_wide([5, 0], 0), [5, 0]);
        assert_eq!(shift_right_wide([5, u32::MAX], 64), [u32::MAX, u32::MAX]);
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

#[test]
fn quantize_multiplier_rejects_nan_inf_and_negative() {
    for rounding in [FixedPointRounding::Single, FixedPointRounding::Double] {
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            -1e-300,
            f64::MIN,
        ] {
            let err = quantize_multiplier(bad, rounding).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidConfig { what, .. } if what == "real multiplier"),
                "{bad}: {err}"
            );
        }
        // -0.0 is zero, the flushed multiplier.
        assert_eq!(qmul(-0.0, rounding), qm(0, 0));
        // The largest finite multiplier is representable in both variants.
        assert!(qmul(f64::MAX, rounding).validate(rounding).is_ok());
        assert!(qmul(f64::from_bits(1), rounding).validate(rounding).is_ok());
    }
}

#[test]
fn hand_built_multipliers_are_validated() {
    use FixedPointRounding::*;
    let ok = [
        (0, 0, Single),
        (0, MIN_SHIFT, Double),
        (1 << 30, MIN_SHIFT, Single),
        (i32::MAX, MAX_SINGLE_ROUNDING_SHIFT, Single),
        (1 << 30, 41, Double),
        (i32::MAX, i32::MAX, Double),
    ];
    for (m0, shift, r) in ok {
        assert_eq!(
            QuantizedMultiplier::new(m0, shift, r),
            Ok(qm(m0, shift)),
            "{m0} {shift} {r:?}"
        );
    }
    let bad = [
        (-1, 0, Single),            // negative
        (i32::MIN, 0, Double),      // negative
        (1, 0, Single),             // unnormalised
        ((1 << 30) - 1, 0, Double), // unnormalised
        (1 << 30, 31, Single),      // shift above single rounding's range
        (1 << 30, 40, Single),
        (1 << 30, -32, Single), // below every kernel's range
        (1 << 30, -32, Double),
        (0, 40, Single), // even a flushed multiplier needs a valid shift
        (0, i32::MIN, Double),
    ];
    for (m0, shift, r) in bad {
        let err = QuantizedMultiplier::new(m0, shift, r).unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig { .. }),
            "{m0} {shift} {r:?}: {err}"
        );
        assert!(
            err.to_string().contains(&m0.to_string())
                || err.to_string().contains(&shift.to_string()),
            "{err}"
        );
    }
}

/// `x / 2^e` rounded half away from zero, from i128 floor division.
fn oracle_rdbpot(x: i32, e: u32) -> i32 {
    let e = e.min(120);
    let d = 1i128 << e;
    let x = i128::from(x);
    let (q, r) = (x.div_euclid(d), x.rem_euclid(d));
    let rounded = if 2 * r > d || (2 * r == d && x >= 0) {
        q + 1
    } else {
        q
    };
    rounded as i32
}

#[test]
fn rounding_divide_by_pot_beyond_31_is_the_exact_rounded_quotient() {
    // Exponent 40 used to return 4 for x = 4 (the shift wrapped); the quotient is 2^-38 -> 0.
    assert_eq!(rounding_divide_by_pot(4, 40), 0);
    assert_eq!(rounding_divide_by_pot(i32::MIN, 32), -1); // -0.5 rounds away
    assert_eq!(rounding_divide_by_pot(i32::MAX, 32), 0); // just below 0.5
    assert_eq!(rounding_divide_by_pot(i32::MIN, 33), 0);
    for x in [i32::MIN, i32::MIN + 1, -3, -1, 0, 1, 3, i32::MAX] {
        for e in [0, 1, 30, 31, 32, 33, 62, 63, 64, 100, u32::MAX] {
            assert_eq!(
                rounding_divide_by_pot(x, e),
                oracle_rdbpot(x, e),
                "{x} / 2^{e}"
            );
        }
    }
}

#[test]
fn mbqm_outside_tflites_shift_range_saturates_exactly() {
    use FixedPointRounding::*;
    // shift 40 used to return 0 (single: the total wrapped); x * m0 * 2^9 saturates.
    assert_eq!(
        multiply_by_quantized_multiplier(1, qm(1 << 30, 40), Single),
        i32::MAX
    );
    assert_eq!(
        multiply_by_quantized_multiplier(-1, qm(1 << 30, 40), Single),
        i32::MIN
    );
    // Double rounding saturates x * 2^left (gemmlowp's saturating shift), then multiplies
    // by m0 / 2^31 = 1/2: i32::MAX / 2 rounded up.
    assert_eq!(
        multiply_by_quantized_multiplier(1, qm(1 << 30, 40), Double),
        1 << 30
    );
    assert_eq!(
        multiply_by_quantized_multiplier(0, qm(1 << 30, 40), Single),
        0
    );
    // shift 31 (one above single rounding's range): total = 0, the exact product.
    assert_eq!(
        multiply_by_quantized_multiplier(3, qm(1 << 30, 31), Single),
        i32::MAX
    );
    assert_eq!(multiply_by_quantized_multiplier(1, qm(0, 31), Single), 0);
    // Far below the range: the quotient rounds to 0 in both variants.
    for shift in [-32, -40, -63, -64, -1000, i32::MIN] {
        for x in [i32::MIN, -1, 1, i32::MAX] {
            assert_eq!(
                multiply_by_quantized_multiplier(x, qm(i32::MAX, shift), Single),
                0,
                "{x} {shift}"
            );
            let d = multiply_by_quantized_multiplier(x, qm(i32::MAX, shift), Double);
            assert!(
                d == 0 || (shift == -32 && d == -1 && x == i32::MIN),
                "{x} {shift}: {d}"
            );
        }
    }
    for shift in [31, 32, 62, 63, 64, 1000, i32::MAX] {
        for x in [i32::MIN, -1, 1, i32::MAX] {
            let want = ((i128::from(x) * (1 << 30)) << (shift - 31).min(64))
                .clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32;
            assert_eq!(
                multiply_by_quantized_multiplier(x, qm(1 << 30, shift), Single),
                want
            );
            let half = if x < 0 { -(1 << 30) } else { 1 << 30 };
            assert_eq!(
                multiply_by_quantized_multiplier(x, qm(1 << 30, shift), Double),
                half
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]
    /// Every shift, even outside TFLite's range: single rounding is the exact rounded value.
    #[test]
    fn mbqm_single_is_exact_for_every_shift(
        x in any::<i32>(),
        m0 in any::<i32>(),
        shift in -70i32..=70,
    ) {
        let p = i128::from(x) * i128::from(m0);
        let t = 31 - shift;
        // floor(p * 2^-t + 1/2) with exact rationals: floor((2p + 2^t) / 2^(t+1)) for t >= 0.
        let want = if t >= 0 {
            (2 * p + (1i128 << t)).div_euclid(1i128 << (t + 1))
        } else {
            p * (1i128 << -t)
        };
        let want = want.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32;
        prop_assert_eq!(multiply_by_quantized_multiplier(x, qm(m0, shift), FixedPointRounding::Single), want);
    }
}
