//! The reference GEMM: the kernel-shaped twin against a naive i64 oracle, the exact
//! accumulator bound, and every epilogue.

use half::f16;
use proptest::prelude::*;
use wgpu_quant::quant::fixed_point::multiply_by_quantized_multiplier;
use wgpu_quant::reference::bounds::{accumulator_range, max_depth};
use wgpu_quant::reference::gemm::{
    GemmInputs, GemmOutput, QMatrix, dequant_f32_fused_alternative, matmul_i8,
    matmul_i8_accumulators, scale_then_bias_candidates,
};
use wgpu_quant::reference::quantize::from_storage_byte;
use wgpu_quant::{
    Activation, Convention, Dequant, DequantScales, Epilogue, Error, FixedPointRounding, QType,
    QuantParams, Requant, RequantScaling,
};

use crate::common::Rng;

/// The exact `Σ (a - za)(w - zw) + bias` in i64, straight from the definition.
fn naive(g: &GemmInputs) -> Vec<i64> {
    let (m, n, k) = g.dims();
    let pick = |v: &[i32], i: usize| i64::from(if v.len() == 1 { v[0] } else { v[i] });
    let mut out = Vec::new();
    for r in 0..m {
        for c in 0..n {
            let mut acc: i64 = g.bias.get(c).map_or(0, |&b| i64::from(b));
            for i in 0..k {
                let av = i64::from(from_storage_byte(g.a.data[r * k + i], g.a.qtype))
                    - pick(g.a_zero_points, r);
                let wv = i64::from(from_storage_byte(g.w.data[c * k + i], g.w.qtype))
                    - pick(g.w_zero_points, c);
                acc += av * wv;
            }
            out.push(acc);
        }
    }
    out
}

fn qtypes() -> impl Strategy<Value = QType> {
    prop::sample::select(vec![QType::I8, QType::U8])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Every i8/u8 combination, per-tensor or per-row/per-channel zero points, with and
    /// without bias, K not divisible by 4: the twin equals the exact sum.
    #[test]
    fn twin_equals_exact_sum(
        m in 1usize..=9, n in 1usize..=9, k in 1usize..=37,
        at in qtypes(), wt in qtypes(), per_row in any::<bool>(), with_bias in any::<bool>(), seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let (alo, ahi) = at.storage_range();
        let (wlo, whi) = wt.storage_range();
        let a = rng.bytes(m * k);
        let w = rng.bytes(n * k);
        let za: Vec<i32> = (0..if per_row { m } else { 1 }).map(|_| rng.int(alo, ahi)).collect();
        let zw: Vec<i32> = (0..if per_row { n } else { 1 }).map(|_| rng.int(wlo, whi)).collect();
        let bias: Vec<i32> = if with_bias { (0..n).map(|_| rng.int(-1 << 20, 1 << 20)).collect() } else { vec![] };
        let inputs = GemmInputs {
            a: QMatrix { data: &a, qtype: at, rows: m, cols: k },
            a_zero_points: &za,
            w: QMatrix { data: &w, qtype: wt, rows: n, cols: k },
            w_zero_points: &zw,
            bias: &bias,
        };
        let got: Vec<i64> = matmul_i8_accumulators(&inputs).unwrap().into_iter().map(i64::from).collect();
        prop_assert_eq!(got, naive(&inputs));
    }
}

fn single(a: &[u8], w: &[u8], k: usize, bias: &[i32]) -> wgpu_quant::Result<Vec<i32>> {
    matmul_i8_accumulators(&GemmInputs {
        a: QMatrix {
            data: a,
            qtype: QType::I8,
            rows: 1,
            cols: k,
        },
        a_zero_points: &[0],
        w: QMatrix {
            data: w,
            qtype: QType::I8,
            rows: 1,
            cols: k,
        },
        w_zero_points: &[0],
        bias,
    })
}

/// i8 × i8 with zero zero points: the largest term is (-128)² = 16384, so K = 131071 is the
/// deepest safe reduction; with all-(-128) data it reaches 2^31 - 16384 exactly. One more
/// element, or a bias of 16384 on top, can overflow and is rejected.
#[test]
fn accumulator_bound_at_and_past_the_limit() {
    assert_eq!(max_depth(QType::I8, 0, QType::I8, 0, 0), 131_071);
    assert_eq!(
        accumulator_range(131_071, QType::I8, 0, QType::I8, 0, 0),
        (-131_071 * 16_256, 131_071 * 16_384)
    );
    let k = 131_071;
    let worst = vec![0x80u8; k + 1];
    assert_eq!(
        single(&worst[..k], &worst[..k], k, &[]).unwrap(),
        vec![131_071 * 16_384]
    );
    assert_eq!(
        single(&worst[..k], &worst[..k], k, &[16_383]).unwrap(),
        vec![i32::MAX]
    );
    assert!(matches!(
        single(&worst[..k], &worst[..k], k, &[16_384]),
        Err(Error::AccumulatorOverflow {
            k: 131_071,
            channel: 0,
            max: 2_147_483_648,
            ..
        })
    ));
    assert!(matches!(
        single(&worst, &worst, k + 1, &[]),
        Err(Error::AccumulatorOverflow { k: 131_072, .. })
    ));
    // u8 activations with zp 0 against i8 weights: terms up to 255·128 = 32640 in magnitude.
    assert_eq!(max_depth(QType::U8, 0, QType::I8, 0, 0), 65_793);
    // Zero points widen the terms: u8 with zp 255 against i8 zp -128 gives (−255)·(255).
    assert_eq!(
        max_depth(QType::U8, 255, QType::I8, -128, 0),
        (i32::MAX as usize + 1) / (255 * 255)
    );
}

#[test]
fn shape_and_parameter_errors() {
    let a = [1u8; 6];
    let w = [1u8; 6];
    let ok = GemmInputs {
        a: QMatrix {
            data: &a,
            qtype: QType::I8,
            rows: 2,
            cols: 3,
        },
        a_zero_points: &[0],
        w: QMatrix {
            data: &w,
            qtype: QType::I8,
            rows: 2,
            cols: 3,
        },
        w_zero_points: &[0],
        bias: &[],
    };
    assert!(ok.validate().is_ok());
    let bad_k = GemmInputs {
        w: QMatrix {
            cols: 2,
            rows: 3,
            ..ok.w
        },
        ..ok
    };
    assert!(matches!(
        bad_k.validate(),
        Err(Error::DimensionMismatch {
            left: 3,
            right: 2,
            ..
        })
    ));
    let short = GemmInputs {
        a: QMatrix {
            data: &a[..5],
            ..ok.a
        },
        ..ok
    };
    assert!(matches!(
        short.validate(),
        Err(Error::ShapeMismatch {
            expected: 6,
            got: 5,
            ..
        })
    ));
    let k0 = GemmInputs {
        a: QMatrix {
            data: &[],
            rows: 2,
            cols: 0,
            ..ok.a
        },
        w: QMatrix {
            data: &[],
            rows: 2,
            cols: 0,
            ..ok.w
        },
        ..ok
    };
    assert!(matches!(k0.validate(), Err(Error::EmptyDimension { .. })));
    let m0 = GemmInputs {
        a: QMatrix {
            data: &[],
            rows: 0,
            ..ok.a
        },
        ..ok
    };
    assert_eq!(
        matmul_i8(&m0, &Epilogue::I32).unwrap(),
        GemmOutput::I32(vec![])
    );
    let bad_zp = GemmInputs {
        a_zero_points: &[200],
        ..ok
    };
    assert!(matches!(
        bad_zp.validate(),
        Err(Error::ZeroPointOutOfRange { value: 200, .. })
    ));
    let bad_bias = GemmInputs {
        bias: &[1, 2, 3],
        ..ok
    };
    assert!(matches!(
        bad_bias.validate(),
        Err(Error::LengthMismatch {
            got: 3,
            expected: 2,
            ..
        })
    ));
    let bad_zw = GemmInputs {
        w_zero_points: &[0, 0, 0],
        ..ok
    };
    assert!(matches!(
        bad_zw.validate(),
        Err(Error::LengthMismatch { .. })
    ));
}

struct Problem {
    m: usize,
    n: usize,
    k: usize,
    a: Vec<u8>,
    w: Vec<u8>,
    za: i32,
    zw: Vec<i32>,
    bias: Vec<i32>,
}

impl Problem {
    fn random(seed: u64, m: usize, n: usize, k: usize) -> Self {
        let mut rng = Rng::new(seed);
        Problem {
            m,
            n,
            k,
            a: rng.bytes(m * k),
            w: rng.bytes(n * k),
            za: rng.int(-10, 10),
            zw: vec![0; n],
            bias: (0..n).map(|_| rng.int(-5000, 5000)).collect(),
        }
    }
    fn inputs(&self) -> GemmInputs<'_> {
        GemmInputs {
            a: QMatrix {
                data: &self.a,
                qtype: QType::I8,
                rows: self.m,
                cols: self.k,
            },
            a_zero_points: std::slice::from_ref(&self.za),
            w: QMatrix {
                data: &self.w,
                qtype: QType::I8,
                rows: self.n,
                cols: self.k,
            },
            w_zero_points: &self.zw,
            bias: &self.bias,
        }
    }
}

#[test]
fn requant_float_follows_its_formula_with_activation() {
    let p = Problem::random(3, 5, 7, 19);
    let acc = matmul_i8_accumulators(&p.inputs()).unwrap();
    let a = QuantParams::per_tensor(0.02, p.za, QType::I8.full_range()).unwrap();
    let w = QuantParams::per_axis(
        0,
        (0..7).map(|i| 0.003 + 0.001 * i as f32).collect(),
        vec![0; 7],
        QType::I8.narrow_range(),
    )
    .unwrap();
    let out = QuantParams::per_tensor(0.05, -3, QType::I8.full_range()).unwrap();
    for act in [Activation::None, Activation::Relu, Activation::Relu6] {
        let r = Requant::float(Convention::Onnx, &a, &w, &out, act).unwrap();
        let RequantScaling::Float(mult) = &r.scaling else {
            panic!("float")
        };
        let (lo, hi) = match act {
            Activation::None => (-128, 127),
            Activation::Relu => (-3, 127), // quantize(0) = zp
            _ => (-3, (6.0f32 / 0.05).round_ties_even() as i32 - 3), // quantize(6) = 120 - 3
        };
        assert_eq!((r.clamp_min, r.clamp_max), (lo, hi), "{act:?}");
        let GemmOutput::Quantized { bytes, .. } =
            matmul_i8(&p.inputs(), &Epilogue::Requant(r.clone())).unwrap()
        else {
            panic!()
        };
        for (i, &b) in bytes.iter().enumerate() {
            let n = i % 7;
            assert_eq!(mult[n], (0.02f32 * w.scale(n)) / 0.05);
            let want = ((acc[i] as f32 * mult[n]).round_ties_even() as i32 + -3).clamp(lo, hi);
            assert_eq!(i32::from(b as i8), want, "{act:?} element {i}");
        }
    }
}

#[test]
fn requant_fixed_point_follows_mbqm_in_both_roundings() {
    let p = Problem::random(4, 6, 5, 23);
    let acc = matmul_i8_accumulators(&p.inputs()).unwrap();
    let a = QuantParams::per_tensor(0.031, p.za, QType::I8.full_range()).unwrap();
    let w = QuantParams::per_axis(
        0,
        vec![0.004, 0.0051, 0.0062, 0.007, 0.0013],
        vec![0; 5],
        QType::I8.narrow_range(),
    )
    .unwrap();
    let out = QuantParams::per_tensor(0.11, 7, QType::I8.full_range()).unwrap();
    for rounding in [FixedPointRounding::Single, FixedPointRounding::Double] {
        let r = Requant::fixed_point(&a, &w, &out, Activation::Relu, rounding).unwrap();
        let RequantScaling::FixedPoint { multipliers, .. } = &r.scaling else {
            panic!()
        };
        let GemmOutput::Quantized { bytes, .. } =
            matmul_i8(&p.inputs(), &Epilogue::Requant(r.clone())).unwrap()
        else {
            panic!()
        };
        for (i, &b) in bytes.iter().enumerate() {
            let want = (multiply_by_quantized_multiplier(acc[i], multipliers[i % 5], rounding) + 7)
                .clamp(7, 127);
            assert_eq!(i32::from(b as i8), want);
        }
    }
}

#[test]
fn dequant_f32_static_dynamic_bias_and_f16() {
    let p = Problem::random(5, 4, 6, 13);
    let acc = matmul_i8_accumulators(&p.inputs()).unwrap();
    let a = QuantParams::per_tensor(0.013, p.za, QType::I8.full_range()).unwrap();
    let w = QuantParams::per_axis(
        0,
        vec![0.01, 0.02, 0.03, 0.04, 0.05, 0.06],
        vec![0; 6],
        QType::I8.narrow_range(),
    )
    .unwrap();
    let fbias: Vec<f32> = (0..6).map(|i| 0.1 * i as f32 - 0.25).collect();

    // Static, no float bias: exactly f32(acc) * f32(s_a * s_w[n]).
    let d = Dequant::per_channel(&a, &w, None).unwrap();
    let GemmOutput::F32(y) = matmul_i8(&p.inputs(), &Epilogue::DequantF32(d.clone())).unwrap()
    else {
        panic!()
    };
    for (i, &v) in y.iter().enumerate() {
        assert_eq!(
            v.to_bits(),
            (acc[i] as f32 * (0.013f32 * w.scale(i % 6))).to_bits()
        );
    }
    // F16: the f32 result rounded once.
    let GemmOutput::F16(h) = matmul_i8(&p.inputs(), &Epilogue::DequantF16(d)).unwrap() else {
        panic!()
    };
    assert_eq!(h, y.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>());

    // With a float bias: the reference is round(round(x*s) + b); the fused alternative fma.
    let d = Dequant::per_channel(&a, &w, Some(fbias.clone())).unwrap();
    let GemmOutput::F32(y) = matmul_i8(&p.inputs(), &Epilogue::DequantF32(d.clone())).unwrap()
    else {
        panic!()
    };
    let fused = dequant_f32_fused_alternative(&p.inputs(), &d)
        .unwrap()
        .unwrap();
    for (i, (&v, &f)) in y.iter().zip(&fused).enumerate() {
        let s = 0.013f32 * w.scale(i % 6);
        assert_eq!(
            [v, f],
            scale_then_bias_candidates(acc[i] as f32, s, fbias[i % 6])
        );
    }

    // Dynamic per-row scales: f32(acc) * (s_a[m] * s_w[n]).
    let rows = vec![0.5f32, 0.25, 0.125, 2.0];
    let d = Dequant {
        scales: DequantScales::PerRowPerChannel {
            row_scales: rows.clone(),
            channel_scales: w.scales().to_vec(),
        },
        bias: None,
    };
    let GemmOutput::F32(y) = matmul_i8(&p.inputs(), &Epilogue::DequantF32(d)).unwrap() else {
        panic!()
    };
    for (i, &v) in y.iter().enumerate() {
        assert_eq!(
            v.to_bits(),
            (acc[i] as f32 * (rows[i / 6] * w.scale(i % 6))).to_bits()
        );
    }
    // A row scale whose product with s_w is not normal is rejected.
    let d = Dequant {
        scales: DequantScales::PerRowPerChannel {
            row_scales: vec![1e-37; 4],
            channel_scales: w.scales().to_vec(),
        },
        bias: None,
    };
    assert!(matches!(
        matmul_i8(&p.inputs(), &Epilogue::DequantF32(d)),
        Err(Error::InvalidScale { .. })
    ));
}

#[test]
fn packed_output_pads_rows_of_n() {
    let p = Problem::random(6, 3, 5, 9);
    let a = QuantParams::per_tensor(0.02, p.za, QType::I8.full_range()).unwrap();
    let w = QuantParams::per_tensor(0.01, 0, QType::I8.narrow_range()).unwrap();
    let out = QuantParams::per_tensor(0.04, 100, QType::U8.full_range()).unwrap();
    let r = Requant::for_convention(Convention::PyTorch, &a, &w, &out, Activation::None).unwrap();
    let y = matmul_i8(&p.inputs(), &Epilogue::Requant(r)).unwrap();
    let GemmOutput::Quantized {
        bytes,
        qtype: QType::U8,
    } = &y
    else {
        panic!()
    };
    let packed = y.packed(3, 5).unwrap();
    assert_eq!(packed.len(), 3 * 2);
    for row in 0..3 {
        for col in 0..5 {
            assert_eq!(
                (packed[row * 2 + col / 4] >> (8 * (col % 4))) as u8,
                bytes[row * 5 + col]
            );
        }
        assert_eq!(packed[row * 2 + 1] >> 8, 0, "padding bytes are zero");
    }
}

#[test]
fn mismatched_specs_are_rejected() {
    let a_axis =
        QuantParams::per_axis(0, vec![0.1, 0.1], vec![0, 0], QType::I8.full_range()).unwrap();
    let w = QuantParams::per_tensor(0.1, 0, QType::I8.full_range()).unwrap();
    let out = QuantParams::per_tensor(0.1, 0, QType::I8.full_range()).unwrap();
    assert!(matches!(
        Requant::float(Convention::Onnx, &a_axis, &w, &out, Activation::None),
        Err(Error::Mismatch(_))
    ));
    assert!(matches!(
        Dequant::per_channel(&a_axis, &w, None),
        Err(Error::Mismatch(_))
    ));
    // Multipliers for 3 channels used on a 5-channel GEMM.
    let p = Problem::random(7, 2, 5, 8);
    let w3 = QuantParams::per_axis(0, vec![0.1; 3], vec![0; 3], QType::I8.full_range()).unwrap();
    let a = QuantParams::per_tensor(0.1, 0, QType::I8.full_range()).unwrap();
    let r = Requant::float(Convention::Onnx, &a, &w3, &out, Activation::None).unwrap();
    assert!(matches!(
        matmul_i8(&p.inputs(), &Epilogue::Requant(r)),
        Err(Error::LengthMismatch {
            got: 3,
            expected: 5,
            ..
        })
    ));
    // An empty activation clamp.
    assert!(matches!(
        Activation::Clamp { lo: 1.0, hi: -1.0 }.quantized_range(Convention::Onnx, &out),
        Err(Error::InvalidConfig { .. })
    ));
}
