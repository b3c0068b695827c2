//! Scalar quantize/dequantize: the seed articles' worked examples, every convention's
//! NaN/Inf/-0/subnormal/tie behaviour, and properties.

use proptest::prelude::*;
use wgpu_quant::Convention;
use wgpu_quant::quant::scalar::{dequantize_value, quantize_value, reciprocal_scale};

const X: [f32; 5] = [-2.5, -1.0, 0.0, 1.0, 3.5];

fn q_all(c: Convention, s: f32, zp: i32, qmin: i32, qmax: i32) -> Vec<i32> {
    X.iter()
        .map(|&x| quantize_value(c, x, s, zp, qmin, qmax))
        .collect()
}

/// Symmetric, S = 3.5 / 127 in [-127, 127]: every convention gives the article's values
/// (no input lands on a tie: -90.71, -36.29, 36.29, 127.0).
#[test]
fn article_symmetric_example() {
    let s = 3.5f32 / 127.0;
    for c in Convention::ALL {
        assert_eq!(q_all(c, s, 0, -127, 127), [-91, -36, 0, 36, 127], "{c:?}");
    }
}

/// Asymmetric, S = 6 / 255, Z = 106 in [0, 255]. In f32, ±1 / S is exactly ±42.5: a tie.
/// Half-to-even (Onnx, PyTorch) gives ±42, half-away (TfLite's `TfLiteRound`) gives ±43,
/// which is the article's `[0, 63, 106, 149, 255]` (it rounds half away from zero).
/// PyTorch's reciprocal multiply gives the same product here: 1 * f32(1/S) = 42.5 as well.
#[test]
fn article_asymmetric_example_per_convention() {
    let s = 6.0f32 / 255.0;
    assert_eq!(1.0 / s, 42.5);
    assert_eq!(1.0 * reciprocal_scale(s), 42.5);
    assert_eq!(
        q_all(Convention::Onnx, s, 106, 0, 255),
        [0, 64, 106, 148, 255]
    );
    assert_eq!(
        q_all(Convention::PyTorch, s, 106, 0, 255),
        [0, 64, 106, 148, 255]
    );
    assert_eq!(
        q_all(Convention::TfLite, s, 106, 0, 255),
        [0, 63, 106, 149, 255]
    );
}

/// Division and reciprocal multiply differ on some inputs; each convention follows its own
/// formula, and the sweep must find inputs where the two results really differ.
#[test]
fn divide_versus_reciprocal_multiply() {
    // Only inputs within an ULP of a half-integer quotient can differ: search there.
    let mut differing = 0;
    for i in 0..20_000u32 {
        let s = 0.001 + (i % 997) as f32 * 0.000_37;
        let k = (i / 7 % 200) as f64 - 100.0;
        let near_tie = ((k + 0.5) * f64::from(s)) as f32;
        let x = f32::from_bits(near_tie.to_bits().wrapping_add(i % 3).wrapping_sub(1));
        let div = quantize_value(Convention::Onnx, x, s, 0, -128, 127);
        let mul = quantize_value(Convention::PyTorch, x, s, 0, -128, 127);
        assert_eq!(
            div,
            ((x / s).round_ties_even() as i32).clamp(-128, 127),
            "x={x} s={s}"
        );
        assert_eq!(
            mul,
            ((x * (1.0 / s)).round_ties_even() as i32).clamp(-128, 127),
            "x={x} s={s}"
        );
        differing += i32::from(div != mul);
    }
    assert!(
        differing > 0,
        "no input distinguished x / s from x * (1 / s)"
    );
}

/// What each convention does with NaN, ±Inf, -0.0, subnormals and huge values.
#[test]
fn special_values_per_convention() {
    let (s, zp) = (0.5f32, 3);
    for c in Convention::ALL {
        let q = |x: f32| quantize_value(c, x, s, zp, -128, 127);
        assert_eq!(q(f32::INFINITY), 127, "{c:?} +Inf saturates");
        assert_eq!(q(f32::NEG_INFINITY), -128, "{c:?} -Inf saturates");
        assert_eq!(q(1e30), 127, "{c:?}");
        assert_eq!(q(-1e30), -128, "{c:?}");
        assert_eq!(q(-0.0), zp, "{c:?} -0.0 is zero");
        assert_eq!(
            q(f32::from_bits(1)),
            zp,
            "{c:?} smallest subnormal rounds to 0"
        );
        assert_eq!(
            q(-f32::from_bits(0x007f_ffff)),
            zp,
            "{c:?} largest subnormal rounds to 0"
        );
        let nan = q(f32::NAN);
        match c {
            Convention::Onnx => assert_eq!(nan, -128, "onnxruntime: NaN -> qmin"),
            Convention::PyTorch | Convention::TfLite => assert_eq!(nan, zp, "{c:?}: NaN -> zp"),
        }
        // NaN with any payload and sign.
        assert_eq!(
            quantize_value(c, f32::from_bits(0xffc0_1234), s, zp, -128, 127),
            nan
        );
    }
}

/// Ties: s = 0.5 makes x / s exact, so x = 1.25 is the tie 2.5 and x = 1.75 is 3.5.
/// Rounding happens before the zero point is added, which matters for odd zero points:
/// with zp = 3, 2.5 → 2 (even) + 3 = 5, not rne(5.5) = 6.
#[test]
fn ties_round_before_the_zero_point() {
    let cases = [
        (1.25f32, 2, 3),
        (1.75, 4, 4),
        (-1.25, -2, -3),
        (-1.75, -4, -4),
        (0.25, 0, 1),
    ];
    for (x, even, away) in cases {
        assert_eq!(
            quantize_value(Convention::Onnx, x, 0.5, 3, -128, 127),
            even + 3,
            "{x}"
        );
        assert_eq!(
            quantize_value(Convention::PyTorch, x, 0.5, 3, -128, 127),
            even + 3,
            "{x}"
        );
        assert_eq!(
            quantize_value(Convention::TfLite, x, 0.5, 3, -128, 127),
            away + 3,
            "{x}"
        );
    }
}

#[test]
fn dequantize_is_one_rounding() {
    assert_eq!(dequantize_value(-128, 0.1, 3), (-131) as f32 * 0.1f32);
    assert_eq!(dequantize_value(255, 1e-3, 0), 255.0f32 * 1e-3f32);
    assert_eq!(dequantize_value(7, 2.0, 7), 0.0);
}

fn convention() -> impl Strategy<Value = Convention> {
    prop::sample::select(Convention::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Inside the range, dequantize(quantize(x)) is within half a step (plus the two
    /// roundings of `x ⊘ s` and of the dequantize product).
    #[test]
    fn round_trip_within_half_a_step(
        c in convention(),
        s in 1e-4f32..10.0,
        zp in -20i32..20,
        t in -100.0f32..100.0,
    ) {
        let x = t * s; // inside [-128, 127] steps around zp
        let q = quantize_value(c, x, s, zp, -128, 127);
        prop_assume!(q > -128 && q < 127); // not saturated
        let back = dequantize_value(q, s, zp);
        let bound = s * 0.5 * (1.0 + 1e-5) + x.abs() * 1e-6;
        prop_assert!((back - x).abs() <= bound, "{c:?} x={x} s={s} zp={zp} q={q} back={back}");
    }

    /// Out of range values saturate to the range ends.
    #[test]
    fn saturation(c in convention(), s in 1e-3f32..1.0, zp in 0i32..255, big in 300.0f32..1e30) {
        prop_assert_eq!(quantize_value(c, big * s.max(1.0), s, zp, 0, 255), 255);
        prop_assert_eq!(quantize_value(c, -big * s.max(1.0), s, zp, 0, 255), 0);
    }

    /// Quantization is monotonic.
    #[test]
    fn monotonic(c in convention(), s in 1e-3f32..1.0, zp in -128i32..127, a in -300.0f32..300.0, b in -300.0f32..300.0) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(quantize_value(c, lo, s, zp, -128, 127) <= quantize_value(c, hi, s, zp, -128, 127));
    }

    /// Exact ties k + 1/2 (s a power of two): even for Onnx/PyTorch, away for TfLite.
    #[test]
    fn exact_ties(k in -100i32..100, e in -6i32..6) {
        let s = 2f32.powi(e);
        let x = (k as f32 + 0.5) * s;
        let even = (k as f32 + 0.5).round_ties_even() as i32;
        let away = (k as f32 + 0.5).round() as i32;
        prop_assert_eq!(quantize_value(Convention::Onnx, x, s, 0, -128, 127), even.clamp(-128, 127));
        prop_assert_eq!(quantize_value(Convention::PyTorch, x, s, 0, -128, 127), even.clamp(-128, 127));
        prop_assert_eq!(quantize_value(Convention::TfLite, x, s, 0, -128, 127), away.clamp(-128, 127));
    }
}

/// Issue 10 §2: hand-picked i32 extremes (outside the documented domain) never panic or
/// overflow: the result stays in `[qmin, qmax]`.
#[test]
fn extreme_integer_arguments_do_not_overflow() {
    for c in Convention::ALL {
        for x in [
            f32::NAN,
            f32::NEG_INFINITY,
            -1e30,
            -1.0,
            0.0,
            1.0,
            1e30,
            f32::INFINITY,
        ] {
            for (zp, qmin, qmax) in [
                (0, i32::MIN, i32::MAX),
                (i32::MAX, i32::MIN, i32::MAX),
                (i32::MIN, i32::MIN, i32::MAX),
                (1, i32::MIN, 0), // zp outside the range
                (i32::MAX, -128, 127),
            ] {
                let q = quantize_value(c, x, 1.0, zp, qmin, qmax);
                if !x.is_nan() {
                    assert!(
                        (qmin..=qmax).contains(&q),
                        "{c:?} {x} {zp} [{qmin}, {qmax}]: {q}"
                    );
                }
            }
        }
        assert_eq!(
            dequantize_value(i32::MIN, 1.0, i32::MAX),
            -4_294_967_295.0f32
        );
        assert_eq!(
            dequantize_value(i32::MAX, 1.0, i32::MIN),
            4_294_967_295.0f32
        );
    }
}
