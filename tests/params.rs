//! Params from a range, per convention, worked by hand (onnxruntime's `compute_scale_zp`
//! itself is pinned by the golden tests in `onnx_conformance`).

use wgpu_quant::quant::params::{TORCH_EPS, scale_zero_point};
use wgpu_quant::{Convention, Error, QType, QuantParams, Scheme};

fn params(c: Convention, scheme: Scheme, lo: f32, hi: f32) -> (f32, i32) {
    scale_zero_point(c, &scheme, lo, hi).unwrap()
}

#[test]
fn onnx_by_hand() {
    // [-1, 3] u8: scale = 4 / 255, zp = rne(0 + 1 / (4/255)) = rne(63.75) = 64.
    assert_eq!(
        params(Convention::Onnx, Scheme::affine(QType::U8), -1.0, 3.0),
        ((4.0f64 / 255.0) as f32, 64)
    );
    // Symmetric u8: zp = rne(127.5) = 128; i8 symmetric range [-127, 127]: scale = 2·3/254.
    assert_eq!(
        params(Convention::Onnx, Scheme::symmetric(QType::U8), -1.0, 3.0).1,
        128
    );
    assert_eq!(
        params(Convention::Onnx, Scheme::symmetric(QType::I8), -1.0, 3.0),
        ((6.0f64 / 254.0) as f32, 0)
    );
    // The range is widened to include 0: [0.5, 2] behaves like [0, 2].
    assert_eq!(
        params(Convention::Onnx, Scheme::affine(QType::U8), 0.5, 2.0),
        params(Convention::Onnx, Scheme::affine(QType::U8), 0.0, 2.0)
    );
    // All-zero range: scale 1.0, zp 0.
    assert_eq!(
        params(Convention::Onnx, Scheme::affine(QType::U8), 0.0, 0.0),
        (1.0, 0)
    );
    // Reduced ranges.
    assert_eq!(
        Scheme::affine(QType::I8)
            .reduced()
            .qrange(Convention::Onnx)
            .unwrap()
            .qmax(),
        64
    );
    assert_eq!(
        Scheme::affine(QType::U8)
            .reduced()
            .qrange(Convention::Onnx)
            .unwrap()
            .qmax(),
        127
    );
}

#[test]
fn torch_by_hand() {
    // Symmetric int8 divides by 127.5, not 127: amax 2.55 → 0.02.
    assert_eq!(
        params(
            Convention::PyTorch,
            Scheme::symmetric(QType::I8),
            -2.55,
            1.0
        ),
        (2.55f32 / 127.5, 0)
    );
    // Symmetric quint8: zp 128; with a custom range (qmin + qmax) / 2.
    assert_eq!(
        params(Convention::PyTorch, Scheme::symmetric(QType::U8), -1.0, 1.0).1,
        128
    );
    assert_eq!(
        params(
            Convention::PyTorch,
            Scheme::symmetric(QType::U8).with_range(0, 200),
            -1.0,
            1.0
        )
        .1,
        100
    );
    // Affine: scale = (max - min) / 255, zp = qmin - rne(min / scale), clamped.
    let (s, z) = params(Convention::PyTorch, Scheme::affine(QType::U8), -1.0, 3.0);
    assert_eq!(s, 4.0f32 / 255.0);
    assert_eq!(z, -((-1.0f32 / s).round_ties_even() as i32));
    // reduce_range: qint8 [-64, 63] (onnxruntime uses [-64, 64]).
    let r = Scheme::affine(QType::I8)
        .reduced()
        .qrange(Convention::PyTorch)
        .unwrap();
    assert_eq!((r.qmin(), r.qmax()), (-64, 63));
    // All-zero range: the eps floor, zp = qmin - 0 for affine.
    assert_eq!(
        params(Convention::PyTorch, Scheme::affine(QType::I8), 0.0, 0.0),
        (TORCH_EPS, -128)
    );
    assert_eq!(
        params(Convention::PyTorch, Scheme::symmetric(QType::I8), 0.0, 0.0),
        (TORCH_EPS, 0)
    );
    // torch's symmetric quint8 with reduce_range keeps zp 128 outside [0, 127]: rejected.
    assert!(matches!(
        scale_zero_point(
            Convention::PyTorch,
            &Scheme::symmetric(QType::U8).reduced(),
            -1.0,
            1.0
        ),
        Err(Error::ZeroPointOutOfRange {
            value: 128,
            qmin: 0,
            qmax: 127,
            ..
        })
    ));
}

#[test]
fn tflite_by_hand() {
    // Symmetric weights: f32(amax / 127), zp 0, range [-127, 127].
    assert_eq!(
        params(Convention::TfLite, Scheme::symmetric(QType::I8), -0.5, 3.81),
        (3.81f32 / 127.0, 0)
    );
    // Asymmetric activations: scale = (max - min) / 255 in f32, zp = round_away(qmin - min / scale).
    let (s, z) = params(Convention::TfLite, Scheme::affine(QType::I8), -1.0, 3.0);
    assert_eq!(s, 4.0f32 / 255.0);
    assert_eq!(z, (-128.0f32 - (-1.0f32 / s)).round() as i32); // -128 + 63.75 → -64.25 → -64
    assert_eq!(z, -64);
    // Symmetric u8 is not a TFLite scheme.
    assert!(matches!(
        scale_zero_point(Convention::TfLite, &Scheme::symmetric(QType::U8), -1.0, 1.0),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn bad_params_are_typed_errors() {
    let r = QType::I8.full_range();
    for bad in [
        0.0,
        -1.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(1),
        1e-39,
    ] {
        assert!(
            matches!(
                QuantParams::per_tensor(bad, 0, r),
                Err(Error::InvalidScale { .. })
            ),
            "scale {bad:e}"
        );
    }
    assert!(matches!(
        QuantParams::per_tensor(1.0, 128, r),
        Err(Error::ZeroPointOutOfRange {
            value: 128,
            qmin: -128,
            qmax: 127,
            ..
        })
    ));
    assert!(matches!(
        QuantParams::per_axis(0, vec![1.0, 1.0], vec![0], r),
        Err(Error::LengthMismatch {
            got: 1,
            expected: 2,
            ..
        })
    ));
    let p = QuantParams::per_axis(1, vec![1.0; 3], vec![0; 3], r).unwrap();
    assert!(p.check_shape(&[4, 3]).is_ok());
    assert!(matches!(
        p.check_shape(&[4, 5]),
        Err(Error::LengthMismatch {
            got: 3,
            expected: 5,
            ..
        })
    ));
    assert!(matches!(
        p.check_shape(&[3]),
        Err(Error::AxisOutOfRange { axis: 1, rank: 1 })
    ));
    assert!(matches!(
        scale_zero_point(Convention::Onnx, &Scheme::affine(QType::U8), f32::NAN, 1.0),
        Err(Error::NonFiniteInput { .. })
    ));
    assert!(matches!(
        scale_zero_point(Convention::Onnx, &Scheme::affine(QType::U8), 2.0, 1.0),
        Err(Error::InvalidConfig { .. })
    ));
    // A range so wide that the scale overflows f32.
    assert!(matches!(
        scale_zero_point(
            Convention::PyTorch,
            &Scheme::affine(QType::U8),
            -f32::MAX,
            f32::MAX
        ),
        Err(Error::InvalidScale { .. })
    ));
    assert!(matches!(
        wgpu_quant::QRange::new(QType::I8, -129, 0),
        Err(Error::InvalidRange { qmin: -129, .. })
    ));
}

/// Issue 10 §2: `scale`/`zero_point` are total (NaN / `i32::MIN` past the last channel, which
/// every consumer rejects) and `get` says which.
#[test]
fn channel_accessors_are_total() {
    let t = QuantParams::per_tensor(0.5, 3, QType::U8.full_range()).unwrap();
    for c in [0, 1, usize::MAX] {
        assert_eq!((t.scale(c), t.zero_point(c)), (0.5, 3));
        assert_eq!(t.get(c), Some((0.5, 3)));
    }
    let a =
        QuantParams::per_axis(1, vec![0.25, 0.75], vec![0, 0], QType::I8.narrow_range()).unwrap();
    assert_eq!(a.get(1), Some((0.75, 0)));
    for c in [2, usize::MAX] {
        assert!(a.scale(c).is_nan());
        assert_eq!(a.zero_point(c), i32::MIN);
        assert_eq!(a.get(c), None);
    }
}

/// The axis rule shared by the reference and the GPU: ONNX's `[-rank, rank - 1]`, negative
/// counting from the end; rank 0 has no axis.
#[test]
fn signed_axes_follow_onnx() {
    use wgpu_quant::quant::params::normalize_axis;
    assert_eq!(normalize_axis(0, 3), Ok(0));
    assert_eq!(normalize_axis(2, 3), Ok(2));
    assert_eq!(normalize_axis(-1, 3), Ok(2));
    assert_eq!(normalize_axis(-3, 3), Ok(0));
    assert_eq!(
        normalize_axis(3, 3),
        Err(Error::AxisOutOfRange { axis: 3, rank: 3 })
    );
    assert!(
        matches!(normalize_axis(-4, 3), Err(Error::InvalidConfig { value, .. }) if value == "-4")
    );
    assert_eq!(
        normalize_axis(0, 0),
        Err(Error::AxisOutOfRange { axis: 0, rank: 0 })
    );
    assert!(normalize_axis(-1, 0).is_err());
    assert!(normalize_axis(i64::MIN, 5).is_err());
    assert_eq!(normalize_axis(i64::MIN, usize::MAX), Ok((1 << 63) - 1));
    assert_eq!(normalize_axis(i64::MAX, usize::MAX), Ok(i64::MAX as usize));
}

/// Rank 0 and shapes whose element count wraps, in the reference quantize/dequantize.
#[test]
fn reference_quantize_shapes() {
    use wgpu_quant::reference::quantize::{dequantize, quantize};
    let t = QuantParams::per_tensor(0.5, 0, QType::I8.full_range()).unwrap();
    // Rank 0 is one element with per-tensor params.
    assert_eq!(
        quantize(Convention::Onnx, &[1.0], &[], &t).unwrap(),
        vec![2]
    );
    assert_eq!(dequantize(&[2], &[], &t).unwrap(), vec![1.0]);
    assert!(matches!(
        quantize(Convention::Onnx, &[1.0, 2.0], &[], &t),
        Err(Error::ShapeMismatch {
            expected: 1,
            got: 2,
            ..
        })
    ));
    // Per-axis params need an axis: rank 0 has none.
    let a = QuantParams::per_axis(0, vec![0.5], vec![0], QType::I8.full_range()).unwrap();
    assert_eq!(
        quantize(Convention::Onnx, &[1.0], &[], &a),
        Err(Error::AxisOutOfRange { axis: 0, rank: 0 })
    );
    // A count that wraps (2^32 * 2^32 = 2^64 = 0 mod 2^64; or * 0 after an overflow) is an error.
    for shape in [
        vec![1 << 32, 1 << 32],
        vec![usize::MAX, 2, 0],
        vec![usize::MAX, usize::MAX],
    ] {
        assert!(
            matches!(
                quantize(Convention::Onnx, &[], &shape, &t),
                Err(Error::SizeOverflow { .. })
            ),
            "{shape:?}"
        );
        assert!(
            matches!(dequantize(&[], &shape, &t), Err(Error::SizeOverflow { .. })),
            "{shape:?}"
        );
    }
}
