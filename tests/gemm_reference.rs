//! The reference GEMM: the kernel-shaped twin against a naive i64 oracle, the exact
//! accumulator bound, and every epilogue.

use half::f16;
use proptest::prelude::*;
use wgpu_quant::quant::fixed_point::multiply_by_quantized_multiplier;
use wgpu_quant::quant::scalar::quantize_value;
use wgpu_quant::reference::bounds::{accumulator_range, max_depth};
use wgpu_quant::reference::gemm::{
    GemmInputs, GemmOutput, QMatrix, dequant_f32_fused_alternative, dequant_requant_value,
    float_clamp, matmul_i8, matmul_i8_accumulators, matmul_i8_fused_alternative,
    scale_then_bias_candidates,
};
use wgpu_quant::reference::quantize::from_storage_byte;
use wgpu_quant::{
    Activation, Convention, Dequant, DequantRequant, DequantScales, Epilogue, Error,
    FixedPointRounding, QType, QuantParams, Requant, RequantScaling,
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
fn hand_built_fixed_point_multipliers_are_refused() {
    use wgpu_quant::QuantizedMultiplier;
    let p = Problem::random(2, 3, 4, 5);
    let a = QuantParams::per_tensor(0.031, p.za, QType::I8.full_range()).unwrap();
    let w = QuantParams::per_tensor(0.004, 0, QType::I8.narrow_range()).unwrap();
    let out = QuantParams::per_tensor(0.11, 7, QType::I8.full_range()).unwrap();
    for rounding in [FixedPointRounding::Single, FixedPointRounding::Double] {
        let good = Requant::fixed_point(&a, &w, &out, Activation::None, rounding).unwrap();
        assert!(matmul_i8(&p.inputs(), &Epilogue::Requant(good.clone())).is_ok());
        let mut bad_cases = vec![(-5, 0), (1, 0), ((1 << 30) - 1, -3), (1 << 30, -32)];
        if rounding == FixedPointRounding::Single {
            bad_cases.push((1 << 30, 31));
            bad_cases.push((1 << 30, 40));
        }
        for (m0, shift) in bad_cases {
            let mut r = good.clone();
            r.scaling = RequantScaling::FixedPoint {
                multipliers: vec![QuantizedMultiplier { m0, shift }],
                rounding,
            };
            let err = matmul_i8(&p.inputs(), &Epilogue::Requant(r)).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidConfig { what, .. } if what.contains("multipliers[0]")),
                "{m0} {shift} {rounding:?}: {err}"
            );
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
        activation: Activation::None,
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
        activation: Activation::None,
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

/// The float range of each activation on a float output.
#[test]
fn float_ranges_of_activations() {
    assert_eq!(Activation::None.float_range().unwrap(), None);
    assert_eq!(
        Activation::Relu.float_range().unwrap(),
        Some((0.0, f32::INFINITY))
    );
    assert_eq!(Activation::Relu6.float_range().unwrap(), Some((0.0, 6.0)));
    assert_eq!(
        Activation::ReluN1To1.float_range().unwrap(),
        Some((-1.0, 1.0))
    );
    assert_eq!(
        Activation::Clamp { lo: -2.5, hi: 0.5 }
            .float_range()
            .unwrap(),
        Some((-2.5, 0.5))
    );
    for bad in [
        Activation::Clamp { lo: 1.0, hi: -1.0 },
        Activation::Clamp {
            lo: f32::NEG_INFINITY,
            hi: 0.0,
        },
        Activation::Clamp {
            lo: 0.0,
            hi: f32::NAN,
        },
        Activation::ClampQuantized { lo: 0, hi: 10 },
    ] {
        assert!(
            matches!(bad.float_range(), Err(Error::InvalidConfig { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(float_clamp(-3.0, Some((0.0, 6.0))), 0.0);
    assert_eq!(float_clamp(7.0, Some((0.0, 6.0))), 6.0);
    assert_eq!(float_clamp(f32::INFINITY, Some((0.0, 6.0))), 6.0);
    assert_eq!(
        float_clamp(f32::INFINITY, Some((0.0, f32::INFINITY))),
        f32::INFINITY
    );
    assert_eq!(float_clamp(-7.0, None), -7.0);
}

/// Random operands with per-tensor or per-row activation zero points, i8 or u8.
struct Operands {
    m: usize,
    n: usize,
    k: usize,
    at: QType,
    a: Vec<u8>,
    w: Vec<u8>,
    za: Vec<i32>,
    zw: Vec<i32>,
    bias: Vec<i32>,
}

impl Operands {
    fn random(seed: u64, (m, n, k): (usize, usize, usize), at: QType, per_row: bool) -> Self {
        let mut rng = Rng::new(seed);
        let (lo, hi) = at.storage_range();
        Operands {
            m,
            n,
            k,
            at,
            a: rng.bytes(m * k),
            w: rng.bytes(n * k),
            za: (0..if per_row { m } else { 1 })
                .map(|_| rng.int(lo, hi))
                .collect(),
            zw: (0..n).map(|_| rng.int(-20, 20)).collect(),
            bias: (0..n).map(|_| rng.int(-3000, 3000)).collect(),
        }
    }
    fn inputs(&self) -> GemmInputs<'_> {
        GemmInputs {
            a: QMatrix {
                data: &self.a,
                qtype: self.at,
                rows: self.m,
                cols: self.k,
            },
            a_zero_points: &self.za,
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

/// Static (`s_acc`) or dynamic (`s_a[m] * s_w[n]`) dequantization, with or without f32 bias.
fn dequant_for(rng: &mut Rng, m: usize, n: usize, dynamic: bool, bias: bool) -> Dequant {
    let bias = bias.then(|| (0..n).map(|_| rng.uniform(-4.0, 4.0)).collect());
    let scales = if dynamic {
        DequantScales::PerRowPerChannel {
            row_scales: (0..m).map(|_| rng.uniform(0.01, 0.1)).collect(),
            channel_scales: (0..n).map(|_| rng.uniform(0.001, 0.01)).collect(),
        }
    } else {
        DequantScales::PerChannel((0..n).map(|_| rng.uniform(1e-4, 1e-3)).collect())
    };
    Dequant {
        scales,
        bias,
        activation: Activation::None,
    }
}

/// `[reference, fused]` f32 values before any activation, straight from the formula.
fn expected_dequant(acc: &[i32], d: &Dequant, n: usize) -> Vec<[f32; 2]> {
    acc.iter()
        .enumerate()
        .map(|(i, &x)| {
            let (r, c) = (i / n, i % n);
            let s = match &d.scales {
                DequantScales::PerChannel(s) => s[c],
                DequantScales::PerRowPerChannel {
                    row_scales,
                    channel_scales,
                } => row_scales[r] * channel_scales[c],
            };
            match &d.bias {
                Some(b) => [x as f32 * s + b[c], (x as f32).mul_add(s, b[c])],
                None => [x as f32 * s; 2],
            }
        })
        .collect()
}

const FLOAT_ACTIVATIONS: [Activation; 5] = [
    Activation::None,
    Activation::Relu,
    Activation::Relu6,
    Activation::ReluN1To1,
    Activation::Clamp { lo: -0.75, hi: 2.5 },
];

/// Every activation on f32 and f16 outputs, static and dynamic scales, with and without f32
/// bias: each member of the rule-2 pair is clamped with comparisons, then (f16) rounded once.
#[test]
fn float_outputs_apply_the_activation_after_the_bias() {
    let mut rng = Rng::new(11);
    let ops = Operands::random(12, (6, 9, 21), QType::U8, false);
    let acc = matmul_i8_accumulators(&ops.inputs()).unwrap();
    for dynamic in [false, true] {
        for bias in [false, true] {
            let base = dequant_for(&mut rng, ops.m, ops.n, dynamic, bias);
            let pairs = expected_dequant(&acc, &base, ops.n);
            for act in FLOAT_ACTIVATIONS {
                let d = base.clone().with_activation(act);
                let range = act.float_range().unwrap();
                let clamp = |v: f32| match range {
                    None => v,
                    Some((lo, hi)) => {
                        let v = if v < lo { lo } else { v };
                        if v > hi { hi } else { v }
                    }
                };
                let GemmOutput::F32(y) =
                    matmul_i8(&ops.inputs(), &Epilogue::DequantF32(d.clone())).unwrap()
                else {
                    panic!()
                };
                let alt = dequant_f32_fused_alternative(&ops.inputs(), &d).unwrap();
                assert_eq!(alt.is_some(), bias);
                let GemmOutput::F16(h) =
                    matmul_i8(&ops.inputs(), &Epilogue::DequantF16(d.clone())).unwrap()
                else {
                    panic!()
                };
                let fused =
                    matmul_i8_fused_alternative(&ops.inputs(), &Epilogue::DequantF16(d)).unwrap();
                for (i, [r, f]) in pairs.iter().enumerate() {
                    let what = format!("{act:?} dynamic {dynamic} bias {bias} element {i}");
                    assert_eq!(y[i].to_bits(), clamp(*r).to_bits(), "{what}");
                    assert_eq!(h[i].to_bits(), f16::from_f32(clamp(*r)).to_bits(), "{what}");
                    if let Some(alt) = &alt {
                        assert_eq!(alt[i].to_bits(), clamp(*f).to_bits(), "{what}");
                    }
                    if let Some(GemmOutput::F16(fh)) = &fused {
                        assert_eq!(
                            fh[i].to_bits(),
                            f16::from_f32(clamp(*f)).to_bits(),
                            "{what}"
                        );
                    }
                    if let Some((lo, hi)) = range {
                        assert!(lo <= y[i] && y[i] <= hi, "{what}");
                    }
                }
                assert_eq!(fused.is_some(), bias);
            }
        }
    }
    // Both sides of the clamp are exercised by the data.
    let pairs = expected_dequant(&acc, &dequant_for(&mut rng, 6, 9, false, false), 9);
    assert!(pairs.iter().any(|p| p[0] < -1.0) && pairs.iter().any(|p| p[0] > 6.0));
    // A quantized clamp has no meaning on a float output.
    let d = dequant_for(&mut rng, 6, 9, false, false)
        .with_activation(Activation::ClampQuantized { lo: 0, hi: 3 });
    assert!(matches!(
        matmul_i8(&ops.inputs(), &Epilogue::DequantF32(d)),
        Err(Error::InvalidConfig { .. })
    ));
}

/// `DequantRequant`: the `DequantF32` value (either rule-2 member) quantized by the convention's
/// scalar quantizer with the activation's integer range; every convention, static and
/// dynamic scales, per-tensor and per-row zero points, with and without f32 bias, i8/u8 in
/// and out.
#[test]
fn dequant_requant_quantizes_the_dequantized_value() {
    let mut rng = Rng::new(21);
    let mut seed = 100;
    for convention in Convention::ALL {
        for (at, ot) in [
            (QType::I8, QType::I8),
            (QType::U8, QType::U8),
            (QType::U8, QType::I8),
            (QType::I8, QType::U8),
        ] {
            for (dynamic, per_row, bias) in [
                (false, false, false),
                (false, false, true),
                (false, true, true),
                (true, true, false),
                (true, true, true),
            ] {
                seed += 1;
                let ops = Operands::random(seed, (5, 11, 17), at, per_row);
                let acc = matmul_i8_accumulators(&ops.inputs()).unwrap();
                let d = dequant_for(&mut rng, ops.m, ops.n, dynamic, bias);
                let pairs = expected_dequant(&acc, &d, ops.n);
                let (lo, hi) = ot.storage_range();
                let out = QuantParams::per_tensor(
                    rng.uniform(0.02, 0.2),
                    rng.int(lo + 30, hi - 30),
                    ot.full_range(),
                )
                .unwrap();
                for act in [Activation::None, Activation::Relu, Activation::Relu6] {
                    let what = format!(
                        "{convention:?} {at:?}->{ot:?} dynamic {dynamic} per-row {per_row} bias {bias} {act:?}"
                    );
                    let r = DequantRequant::new(convention, d.clone(), &out, act).unwrap();
                    assert_eq!(
                        (r.clamp_min, r.clamp_max),
                        act.quantized_range(convention, &out).unwrap()
                    );
                    let epilogue = Epilogue::DequantRequant(r.clone());
                    let GemmOutput::Quantized { qtype, bytes } =
                        matmul_i8(&ops.inputs(), &epilogue).unwrap()
                    else {
                        panic!()
                    };
                    assert_eq!(qtype, ot);
                    let alt = matmul_i8_fused_alternative(&ops.inputs(), &epilogue).unwrap();
                    assert_eq!(alt.is_some(), bias, "{what}");
                    let q = |v: f32| {
                        quantize_value(
                            convention,
                            v,
                            out.scale(0),
                            out.zero_point(0),
                            r.clamp_min,
                            r.clamp_max,
                        )
                    };
                    let mut saturated = 0;
                    for (i, [v, f]) in pairs.iter().enumerate() {
                        let want = q(*v);
                        assert_eq!(from_storage_byte(bytes[i], ot), want, "{what} element {i}");
                        assert_eq!(dequant_requant_value(&r, *v), want);
                        saturated += usize::from(want == r.clamp_min || want == r.clamp_max);
                        if let Some(GemmOutput::Quantized { bytes: fb, .. }) = &alt {
                            assert_eq!(from_storage_byte(fb[i], ot), q(*f), "{what} fused {i}");
                        }
                    }
                    assert!(saturated < pairs.len(), "{what}: everything saturated");
                }
            }
        }
    }
}

/// An accumulator times a huge scale overflows to ±Inf; the quantizer saturates it (no NaN
/// arises, with or without a bias), and a float clamp bounds it.
#[test]
fn dequant_overflow_saturates() {
    let ops = Operands::random(31, (3, 4, 40), QType::I8, false);
    let acc = matmul_i8_accumulators(&ops.inputs()).unwrap();
    let d = Dequant {
        scales: DequantScales::PerChannel(vec![3e38]),
        bias: Some(vec![1.0, -1.0, 1e38, -1e38]),
        activation: Activation::None,
    };
    let out = QuantParams::per_tensor(0.1, 3, QType::I8.full_range()).unwrap();
    for convention in Convention::ALL {
        let r = DequantRequant::new(convention, d.clone(), &out, Activation::None).unwrap();
        let epilogue = Epilogue::DequantRequant(r);
        for y in [
            matmul_i8(&ops.inputs(), &epilogue).unwrap(),
            matmul_i8_fused_alternative(&ops.inputs(), &epilogue)
                .unwrap()
                .unwrap(),
        ] {
            let GemmOutput::Quantized { bytes, .. } = y else {
                panic!()
            };
            for (i, &b) in bytes.iter().enumerate() {
                let want = match acc[i].signum() {
                    1 => 127,
                    -1 => -128,
                    _ => from_storage_byte(b, QType::I8),
                };
                assert_eq!(from_storage_byte(b, QType::I8), want, "{convention:?} {i}");
            }
        }
    }
    let GemmOutput::F32(y) = matmul_i8(
        &ops.inputs(),
        &Epilogue::DequantF32(d.clone().with_activation(Activation::Relu6)),
    )
    .unwrap() else {
        panic!()
    };
    for (i, v) in y.iter().enumerate() {
        assert_eq!(
            *v,
            if acc[i] > 0 {
                6.0
            } else if acc[i] < 0 {
                0.0
            } else {
                *v
            }
        );
    }
}

#[test]
fn dequant_requant_rejects_bad_params() {
    use wgpu_quant::quant::epilogue::MIN_DEQUANT_REQUANT_OUT_SCALE;
    assert_eq!(MIN_DEQUANT_REQUANT_OUT_SCALE, 2f32.powi(-125));
    assert_eq!(
        MIN_DEQUANT_REQUANT_OUT_SCALE,
        wgpu_quant::gpu::quantize::MIN_RECIPROCAL_SCALE
    );
    let d = Dequant {
        scales: DequantScales::PerChannel(vec![0.01]),
        bias: None,
        activation: Activation::None,
    };
    let out = QuantParams::per_tensor(0.1, 0, QType::I8.full_range()).unwrap();
    let per_axis =
        QuantParams::per_axis(0, vec![0.1, 0.1], vec![0, 0], QType::I8.full_range()).unwrap();
    assert!(matches!(
        DequantRequant::new(Convention::Onnx, d.clone(), &per_axis, Activation::None),
        Err(Error::Mismatch(_))
    ));
    assert!(matches!(
        DequantRequant::new(
            Convention::Onnx,
            d.clone().with_activation(Activation::Relu),
            &out,
            Activation::None
        ),
        Err(Error::InvalidConfig { .. })
    ));
    let tiny = QuantParams::per_tensor(2f32.powi(-126), 0, QType::I8.full_range()).unwrap();
    assert!(matches!(
        DequantRequant::new(Convention::Onnx, d.clone(), &tiny, Activation::None),
        Err(Error::InvalidConfig { .. })
    ));
    let at_limit = QuantParams::per_tensor(2f32.powi(-125), 0, QType::I8.full_range()).unwrap();
    assert!(
        DequantRequant::new(Convention::PyTorch, d.clone(), &at_limit, Activation::None).is_ok()
    );
    // 1 / 2^127 is subnormal: the reciprocal convention refuses it, the division does not.
    let huge = QuantParams::per_tensor(2f32.powi(127), 0, QType::I8.full_range()).unwrap();
    assert!(matches!(
        DequantRequant::new(Convention::PyTorch, d.clone(), &huge, Activation::None),
        Err(Error::InvalidScale { .. })
    ));
    assert!(DequantRequant::new(Convention::Onnx, d.clone(), &huge, Activation::None).is_ok());
    // Hand-built values are checked when the GEMM runs.
    let ok = DequantRequant::new(Convention::Onnx, d.clone(), &out, Activation::None).unwrap();
    let ops = Operands::random(41, (2, 3, 5), QType::I8, false);
    for bad in [
        DequantRequant {
            clamp_min: -200,
            ..ok.clone()
        },
        DequantRequant {
            out_zero_point: 300,
            ..ok.clone()
        },
        DequantRequant {
            out_scale: f32::NAN,
            ..ok.clone()
        },
        DequantRequant {
            dequant: d.clone().with_activation(Activation::Relu6),
            ..ok.clone()
        },
        DequantRequant {
            dequant: Dequant {
                scales: DequantScales::PerChannel(vec![0.0]),
                ..d.clone()
            },
            ..ok.clone()
        },
    ] {
        assert!(
            matmul_i8(&ops.inputs(), &Epilogue::DequantRequant(bad.clone())).is_err(),
            "{bad:?}"
        );
    }
    assert!(matmul_i8(&ops.inputs(), &Epilogue::DequantRequant(ok)).is_ok());
}

/// Issue 10 §1: an output whose M * N accumulators cannot be allocated is a typed error, not
/// an abort (1 MiB of A and 16 MiB of W at K = 1 ask for 2^44 accumulators).
#[test]
fn huge_gemm_output_is_a_typed_error() {
    let (m, n) = (1usize << 20, 1usize << 24);
    let a = vec![1u8; m];
    let w = vec![1u8; n];
    let inputs = GemmInputs {
        a: QMatrix {
            data: &a,
            qtype: QType::I8,
            rows: m,
            cols: 1,
        },
        a_zero_points: &[0],
        w: QMatrix {
            data: &w,
            qtype: QType::I8,
            rows: n,
            cols: 1,
        },
        w_zero_points: &[0],
        bias: &[],
    };
    let err = matmul_i8_accumulators(&inputs).unwrap_err();
    assert!(matches!(err, Error::SizeOverflow { .. }), "{err}");
}

/// Issue 10 §2: zero-point or bias vectors of the wrong length are typed errors (they used to
/// index out of bounds).
#[test]
fn accumulator_bound_checks_vector_lengths() {
    use wgpu_quant::reference::bounds::check_accumulator_bound;
    let ok = check_accumulator_bound(16, 3, QType::I8, 0, QType::I8, &[0, 0, 0], &[1, 2, 3]);
    assert!(ok.is_ok());
    assert!(check_accumulator_bound(16, 3, QType::I8, 0, QType::I8, &[0], &[]).is_ok());
    assert!(check_accumulator_bound(16, 3, QType::I8, 0, QType::I8, &[0], &[7]).is_ok());
    for (zw, bias) in [
        (&[0, 0][..], &[][..]),
        (&[][..], &[][..]),
        (&[0][..], &[1, 2][..]),
        (&[0, 0, 0, 0][..], &[1, 2, 3][..]),
        (&[0][..], &[1, 2, 3, 4][..]),
    ] {
        let err = check_accumulator_bound(16, 3, QType::I8, 0, QType::I8, zw, bias).unwrap_err();
        assert!(
            matches!(err, Error::LengthMismatch { expected: 3, .. }),
            "{zw:?} {bias:?}: {err}"
        );
    }
}
