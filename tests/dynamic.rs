//! Dynamic quantization: per row and per tensor, ONNX and symmetric per-token.
//! (onnxruntime's DynamicQuantizeLinear itself is pinned in `onnx_conformance`.)

use wgpu_quant::quant::divide::div_f32_exact;
use wgpu_quant::reference::dynamic::{
    DynamicGranularity, DynamicScheme, PER_TOKEN_SCALE_FLOOR, dynamic_params, dynamic_quantize,
};
use wgpu_quant::{Error, QType};

#[test]
fn onnx_all_zero_rule_and_per_row() {
    let x = [0.0f32, 0.0, 0.0, -1.0, 2.0, 3.0];
    let per_row = dynamic_quantize(
        &x,
        2,
        3,
        DynamicScheme::OnnxLinear { qtype: QType::U8 },
        DynamicGranularity::PerRow,
    )
    .unwrap();
    // Row 0 is all zero: onnxruntime's scale 1.0, zp 0 (onnx.reference would give 1/255).
    assert_eq!((per_row.scales[0], per_row.zero_points[0]), (1.0, 0));
    assert_eq!(&per_row.bytes[..3], &[0, 0, 0]);
    // Row 1: [-1, 3] → scale 4/255, zp rne(0 - (-1)/scale) = rne(63.75) = 64.
    assert_eq!(per_row.scales[1], div_f32_exact(4.0, 255.0));
    assert_eq!(per_row.zero_points[1], 64);
    let per_tensor = dynamic_quantize(
        &x,
        2,
        3,
        DynamicScheme::OnnxLinear { qtype: QType::U8 },
        DynamicGranularity::PerTensor,
    )
    .unwrap();
    assert_eq!(per_tensor.scales.len(), 1);
    assert_eq!(&per_tensor.bytes[3..], &per_row.bytes[3..]);
}

#[test]
fn symmetric_per_token_scale_floor_and_range() {
    let x = [0.0f32, 0.0, 0.0, 0.0, -254.0, 127.0, 1.0, 0.5];
    let q = dynamic_quantize(
        &x,
        2,
        4,
        DynamicScheme::SymmetricPerToken,
        DynamicGranularity::PerRow,
    )
    .unwrap();
    assert_eq!(q.scales[0], PER_TOKEN_SCALE_FLOOR);
    assert_eq!(q.scales[1], 2.0);
    assert_eq!(q.zero_points, vec![0, 0]);
    let values: Vec<i8> = q.bytes.iter().map(|&b| b as i8).collect();
    // -254 / 2 = -127 (the narrow range), 127 / 2 = 63.5 → 64 (even), 0.5 / 2 = 0.25 → 0.
    assert_eq!(values, vec![0, 0, 0, 0, -127, 64, 0, 0]);
}

#[test]
fn non_finite_values_do_not_enter_the_range() {
    let x = [f32::NAN, f32::INFINITY, -2.0, 1.0, f32::NEG_INFINITY];
    let (s, zp) = dynamic_params(DynamicScheme::OnnxLinear { qtype: QType::U8 }, &x);
    assert_eq!(
        (s, zp),
        dynamic_params(DynamicScheme::OnnxLinear { qtype: QType::U8 }, &[-2.0, 1.0])
    );
    let q = dynamic_quantize(
        &x,
        1,
        5,
        DynamicScheme::OnnxLinear { qtype: QType::U8 },
        DynamicGranularity::PerTensor,
    )
    .unwrap();
    // NaN → qmin, +Inf → 255, -Inf → 0 (Onnx quantize rules).
    assert_eq!((q.bytes[0], q.bytes[1], q.bytes[4]), (0, 255, 0));
    let (s, _) = dynamic_params(DynamicScheme::SymmetricPerToken, &x);
    assert_eq!(s, div_f32_exact(2.0, 127.0));
}

#[test]
fn shape_errors() {
    let scheme = DynamicScheme::SymmetricPerToken;
    assert!(matches!(
        dynamic_quantize(&[1.0; 5], 2, 3, scheme, DynamicGranularity::PerRow),
        Err(Error::ShapeMismatch {
            expected: 6,
            got: 5,
            ..
        })
    ));
    assert!(matches!(
        dynamic_quantize(&[], 2, 0, scheme, DynamicGranularity::PerRow),
        Err(Error::EmptyDimension { .. })
    ));
    let empty = dynamic_quantize(&[], 0, 4, scheme, DynamicGranularity::PerTensor).unwrap();
    assert!(empty.bytes.is_empty() && empty.scales.is_empty());
}

/// Issue 10 §3: a row whose range exceeds f32 (values near ±3.4e38) used to give scale +Inf
/// and NaN outputs. The width saturates to `f32::MAX`: scale = `f32::MAX / 255`, finite, and
/// the outputs follow the usual formulas.
#[test]
fn range_wider_than_f32_saturates_the_width() {
    let x = [-3.0e38f32, 3.0e38, 0.0, 1.0e38, -f32::MAX, f32::MAX];
    for scheme in [
        DynamicScheme::OnnxLinear { qtype: QType::U8 },
        DynamicScheme::OnnxLinear { qtype: QType::I8 },
    ] {
        let (scale, zp) = dynamic_params(scheme, &x);
        assert_eq!(scale, div_f32_exact(f32::MAX, 255.0), "{scheme:?}");
        assert_eq!(scale.to_bits(), 0x7b80_8080, "{scheme:?}: {scale:e}");
        let (qmin, qmax) = scheme.qtype().storage_range();
        // qmin - (-f32::MAX / scale) = qmin + 255 rounds to qmax... the exact value follows:
        let initial = qmin as f32 - div_f32_exact(-f32::MAX, scale);
        assert_eq!(
            zp,
            (initial.clamp(qmin as f32, qmax as f32)).round_ties_even() as i32
        );
        let q = dynamic_quantize(&x, 1, x.len(), scheme, DynamicGranularity::PerRow).unwrap();
        assert_eq!(q.scales, vec![scale]);
        assert!(q.scales.iter().all(|s| s.is_finite() && *s > 0.0));
        // Ends of the range land on the ends of the type.
        let v = |b: u8| match scheme.qtype() {
            QType::I8 => i32::from(b as i8),
            QType::U8 => i32::from(b),
        };
        assert_eq!(v(q.bytes[4]), qmin, "{scheme:?}");
        assert_eq!(v(q.bytes[5]), qmax, "{scheme:?}");
        assert_eq!(v(q.bytes[2]), zp, "{scheme:?}");
    }
    // Below the overflow nothing changes: a width of exactly f32::MAX is the ordinary rule.
    let (s, _) = dynamic_params(
        DynamicScheme::OnnxLinear { qtype: QType::U8 },
        &[0.0, f32::MAX],
    );
    assert_eq!(s, div_f32_exact(f32::MAX, 255.0));
    // Symmetric per token never overflows: absmax / 127 is finite.
    let (s, zp) = dynamic_params(DynamicScheme::SymmetricPerToken, &x);
    assert_eq!((s, zp), (div_f32_exact(f32::MAX, 127.0), 0));
}
