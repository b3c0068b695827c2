//! The table of bad inputs: every row is an input the crate must refuse, and the typed error
//! it gets. The README's reliability section lists the same rows.

use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights, RowParams};
use wgpu_quant::quant::calibrate::{Entropy, MinMax, Observer, Percentile};
use wgpu_quant::quant::params::scale_zero_point;
use wgpu_quant::reference::gemm::{GemmInputs, QMatrix, matmul_i8};
use wgpu_quant::{
    Activation, Convention, Dequant, Epilogue, Error, QType, QuantParams, Requant, Scheme,
};

use crate::common::gpu;

type Row = (
    &'static str,
    Box<dyn Fn() -> Result<(), Error>>,
    fn(&Error) -> bool,
);

fn r8() -> wgpu_quant::QRange {
    QType::I8.full_range()
}

fn gemm(a_len: usize, w_cols: usize, k: usize, bias: &'static [i32]) -> Result<(), Error> {
    let a = vec![1u8; a_len];
    let w = vec![1u8; 3 * w_cols];
    matmul_i8(
        &GemmInputs {
            a: QMatrix {
                data: &a,
                qtype: QType::I8,
                rows: 2,
                cols: k,
            },
            a_zero_points: &[0],
            w: QMatrix {
                data: &w,
                qtype: QType::I8,
                rows: 3,
                cols: w_cols,
            },
            w_zero_points: &[0],
            bias,
        },
        &Epilogue::I32,
    )
    .map(|_| ())
}

fn cpu_rows() -> Vec<Row> {
    vec![
        (
            "scale 0",
            Box::new(|| QuantParams::per_tensor(0.0, 0, r8()).map(|_| ())),
            |e| matches!(e, Error::InvalidScale { .. }),
        ),
        (
            "scale negative",
            Box::new(|| QuantParams::per_tensor(-1.0, 0, r8()).map(|_| ())),
            |e| matches!(e, Error::InvalidScale { .. }),
        ),
        (
            "scale NaN",
            Box::new(|| QuantParams::per_tensor(f32::NAN, 0, r8()).map(|_| ())),
            |e| matches!(e, Error::InvalidScale { .. }),
        ),
        (
            "scale +Inf",
            Box::new(|| QuantParams::per_tensor(f32::INFINITY, 0, r8()).map(|_| ())),
            |e| matches!(e, Error::InvalidScale { .. }),
        ),
        (
            "scale -Inf",
            Box::new(|| QuantParams::per_tensor(f32::NEG_INFINITY, 0, r8()).map(|_| ())),
            |e| matches!(e, Error::InvalidScale { .. }),
        ),
        (
            "scale subnormal",
            Box::new(|| QuantParams::per_tensor(1e-40, 0, r8()).map(|_| ())),
            |e| matches!(e, Error::InvalidScale { .. }),
        ),
        (
            "s_a * s_w not normal",
            Box::new(|| {
                let a = QuantParams::per_tensor(1e-30, 0, r8())?;
                let w = QuantParams::per_tensor(1e-20, 0, r8())?;
                Dequant::per_channel(&a, &w, None).map(|_| ())
            }),
            |e| matches!(e, Error::InvalidScale { what, .. } if what.contains("s_a * s_w")),
        ),
        (
            "M = s_a*s_w/s_out not normal",
            Box::new(|| {
                let a = QuantParams::per_tensor(1e-20, 0, r8())?;
                let out = QuantParams::per_tensor(1e20, 0, r8())?;
                Requant::float(Convention::Onnx, &a, &a, &out, Activation::None).map(|_| ())
            }),
            |e| matches!(e, Error::InvalidScale { .. }),
        ),
        (
            "zero point outside the type",
            Box::new(|| QuantParams::per_tensor(1.0, 200, r8()).map(|_| ())),
            |e| matches!(e, Error::ZeroPointOutOfRange { value: 200, .. }),
        ),
        (
            "zero point outside a narrow range",
            Box::new(|| QuantParams::per_tensor(1.0, -128, QType::I8.narrow_range()).map(|_| ())),
            |e| matches!(e, Error::ZeroPointOutOfRange { .. }),
        ),
        (
            "per-axis length vs axis",
            Box::new(|| {
                QuantParams::per_axis(0, vec![1.0; 3], vec![0; 3], r8())?.check_shape(&[4, 2])
            }),
            |e| {
                matches!(
                    e,
                    Error::LengthMismatch {
                        got: 3,
                        expected: 4,
                        ..
                    }
                )
            },
        ),
        (
            "per-axis axis out of range",
            Box::new(|| {
                QuantParams::per_axis(2, vec![1.0; 3], vec![0; 3], r8())?.check_shape(&[3, 2])
            }),
            |e| matches!(e, Error::AxisOutOfRange { axis: 2, rank: 2 }),
        ),
        (
            "scales and zero points differ in length",
            Box::new(|| QuantParams::per_axis(0, vec![1.0; 3], vec![0; 2], r8()).map(|_| ())),
            |e| matches!(e, Error::LengthMismatch { .. }),
        ),
        (
            "K of A differs from K of W",
            Box::new(|| gemm(2 * 5, 4, 5, &[])),
            |e| {
                matches!(
                    e,
                    Error::DimensionMismatch {
                        left: 5,
                        right: 4,
                        ..
                    }
                )
            },
        ),
        (
            "A shorter than its shape",
            Box::new(|| gemm(9, 5, 5, &[])),
            |e| {
                matches!(
                    e,
                    Error::ShapeMismatch {
                        expected: 10,
                        got: 9,
                        ..
                    }
                )
            },
        ),
        ("K = 0", Box::new(|| gemm(0, 0, 0, &[])), |e| {
            matches!(e, Error::EmptyDimension { .. })
        }),
        (
            "bias of the wrong length",
            Box::new(|| gemm(10, 5, 5, &[1, 2])),
            |e| {
                matches!(
                    e,
                    Error::LengthMismatch {
                        got: 2,
                        expected: 3,
                        ..
                    }
                )
            },
        ),
        (
            "accumulator one past the bound",
            Box::new(|| {
                let k = 131_072;
                let a = vec![0x80u8; k];
                matmul_i8(
                    &GemmInputs {
                        a: QMatrix {
                            data: &a,
                            qtype: QType::I8,
                            rows: 1,
                            cols: k,
                        },
                        a_zero_points: &[0],
                        w: QMatrix {
                            data: &a,
                            qtype: QType::I8,
                            rows: 1,
                            cols: k,
                        },
                        w_zero_points: &[0],
                        bias: &[],
                    },
                    &Epilogue::I32,
                )
                .map(|_| ())
            }),
            |e| matches!(e, Error::AccumulatorOverflow { k: 131_072, .. }),
        ),
        (
            "calibration: empty batch",
            Box::new(|| Observer::per_tensor(MinMax::new()).observe(&[], &[0])),
            |e| matches!(e, Error::EmptyInput { .. }),
        ),
        (
            "calibration: NaN",
            Box::new(|| Observer::per_tensor(MinMax::new()).observe(&[1.0, f32::NAN], &[2])),
            |e| matches!(e, Error::NonFiniteInput { index: 1, .. }),
        ),
        (
            "calibration: +Inf",
            Box::new(|| Observer::per_tensor(MinMax::new()).observe(&[f32::INFINITY], &[1])),
            |e| matches!(e, Error::NonFiniteInput { .. }),
        ),
        (
            "calibration: -Inf",
            Box::new(|| Observer::per_tensor(MinMax::new()).observe(&[f32::NEG_INFINITY], &[1])),
            |e| matches!(e, Error::NonFiniteInput { .. }),
        ),
        (
            "percentile 0",
            Box::new(|| Percentile::new(0.0, 2048, true).map(|_| ())),
            |e| matches!(e, Error::InvalidConfig { .. }),
        ),
        (
            "percentile above 100",
            Box::new(|| Percentile::new(100.5, 2048, true).map(|_| ())),
            |e| matches!(e, Error::InvalidConfig { .. }),
        ),
        (
            "zero histogram bins",
            Box::new(|| Percentile::new(99.0, 0, true).map(|_| ())),
            |e| matches!(e, Error::InvalidConfig { .. }),
        ),
        (
            "entropy quantized bins > bins",
            Box::new(|| Entropy::new(128, 256).map(|_| ())),
            |e| matches!(e, Error::InvalidConfig { .. }),
        ),
        (
            "range with NaN bound",
            Box::new(|| {
                scale_zero_point(Convention::Onnx, &Scheme::affine(QType::U8), f32::NAN, 1.0)
                    .map(|_| ())
            }),
            |e| matches!(e, Error::NonFiniteInput { .. }),
        ),
        (
            "range min > max",
            Box::new(|| {
                scale_zero_point(Convention::Onnx, &Scheme::affine(QType::U8), 2.0, 1.0).map(|_| ())
            }),
            |e| matches!(e, Error::InvalidConfig { .. }),
        ),
        (
            "requant with per-axis activation params",
            Box::new(|| {
                let a = QuantParams::per_axis(0, vec![0.1; 2], vec![0; 2], r8())?;
                let w = QuantParams::per_tensor(0.1, 0, r8())?;
                Requant::float(Convention::Onnx, &a, &w, &w, Activation::None).map(|_| ())
            }),
            |e| matches!(e, Error::Mismatch(_)),
        ),
        (
            "activation clamp lo > hi",
            Box::new(|| {
                let out = QuantParams::per_tensor(0.1, 0, r8())?;
                Activation::Clamp { lo: 1.0, hi: -1.0 }
                    .quantized_range(Convention::Onnx, &out)
                    .map(|_| ())
            }),
            |e| matches!(e, Error::InvalidConfig { .. }),
        ),
    ]
}

#[test]
fn cpu_bad_inputs() {
    let rows = cpu_rows();
    assert!(rows.len() >= 30);
    for (name, run, expected) in rows {
        match run() {
            Ok(()) => panic!("{name}: accepted"),
            Err(e) => assert!(expected(&e), "{name}: wrong error {e:?}"),
        }
    }
}

fn layer(ctx: &Context, input: ActivationInput) -> QLinear {
    let p = QuantParams::per_tensor(0.1, 0, r8()).unwrap();
    let w = QuantizedWeights::from_quantized(ctx, &[1u8; 12], 3, 4, p).unwrap();
    QLinear::new(ctx, w, input, None, Epilogue::I32).unwrap()
}

#[test]
fn gpu_bad_inputs() {
    let Some(ctx) = gpu() else { return };
    let storage = wgpu::BufferUsages::STORAGE;
    let st = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 0,
    };
    let l = layer(ctx, st);
    let a = upload(ctx, "a", &[0u32; 2], storage).unwrap();
    let out = create(ctx, "out", 24, storage | wgpu::BufferUsages::COPY_SRC).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    // Missing STORAGE usage.
    let no_storage = create(ctx, "x", 64, wgpu::BufferUsages::COPY_DST).unwrap();
    assert!(matches!(
        l.encode(ctx, &mut enc, 2, &no_storage, None, &out),
        Err(Error::InvalidConfig { .. })
    ));
    // A buffer smaller than the shape needs.
    assert!(matches!(
        l.encode(ctx, &mut enc, 3, &a, None, &out),
        Err(Error::BufferTooSmall {
            needed: 12,
            size: 8,
            ..
        })
    ));
    // Row params given to a static layer, and missing for a per-row one.
    let rows = upload(ctx, "rows", &[RowParams::default(); 2], storage).unwrap();
    assert!(matches!(
        l.encode(ctx, &mut enc, 2, &a, Some(&rows), &out),
        Err(Error::Mismatch(_))
    ));
    let per_row = layer(ctx, ActivationInput::PerRow { qtype: QType::I8 });
    assert!(matches!(
        per_row.encode(ctx, &mut enc, 2, &a, None, &out),
        Err(Error::Mismatch(_))
    ));
    // Per-row scales with a static input.
    let p = QuantParams::per_tensor(0.1, 0, r8()).unwrap();
    let w = QuantizedWeights::from_quantized(ctx, &[1u8; 12], 3, 4, p).unwrap();
    let dynamic = Epilogue::DequantF32(Dequant {
        scales: wgpu_quant::DequantScales::PerRowPerChannel {
            row_scales: vec![],
            channel_scales: vec![0.1],
        },
        bias: None,
        activation: Activation::None,
    });
    assert!(matches!(
        QLinear::new(ctx, w, st, None, dynamic),
        Err(Error::Mismatch(_))
    ));
    // Reading back a buffer without COPY_SRC: a caught validation error.
    let no_copy = create(ctx, "no copy", 16, storage).unwrap();
    assert!(matches!(
        read_blocking(ctx, &no_copy, 16),
        Err(Error::Gpu(_))
    ));
    // Buffers of another device and destroyed buffers: tests/faults.rs
    // (`foreign_and_destroyed_buffers_are_typed_errors`), on a context with no error handler.
    // A tensor above max_buffer_size.
    let max = ctx.device().limits().max_buffer_size;
    assert!(matches!(
        create(ctx, "huge", max + 4, storage),
        Err(Error::Unsupported(_))
    ));
    // The context still works.
    assert_eq!(
        l.run_blocking(ctx, &[1u8; 8], 2, None).unwrap(),
        wgpu_quant::reference::gemm::GemmOutput::I32(vec![4; 6])
    );
}

/// Hostile shapes, bytes, row params, multipliers and aliased buffers on the GPU layer: each
/// is a typed error (no abort from a wrapping size, no panic, nothing accepted silently), and
/// the context keeps working.
#[test]
fn gpu_hostile_inputs() {
    use wgpu_quant::gpu::dynamic::DynamicQuantizer;
    use wgpu_quant::gpu::matmul_f32::F32Linear;
    use wgpu_quant::gpu::quantize::Quantizer;
    use wgpu_quant::quant::fixed_point::{FixedPointRounding, QuantizedMultiplier};
    use wgpu_quant::reference::dynamic::{DynamicGranularity, DynamicScheme};
    use wgpu_quant::{Requant, RequantScaling};
    let Some(ctx) = gpu() else { return };
    let storage = wgpu::BufferUsages::STORAGE;
    let st = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 0,
    };
    let l = layer(ctx, st);
    let a = upload(ctx, "a", &[0u32; 2], storage).unwrap();
    let out = create(ctx, "out", 24, storage | wgpu::BufferUsages::COPY_SRC).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    // An M whose byte count wraps u64 (it used to wrap to a small size, then abort).
    for m in [1usize << 62, usize::MAX, (u64::MAX / 4 + 1) as usize] {
        let e = l.encode(ctx, &mut enc, m, &a, None, &out).unwrap_err();
        assert!(matches!(e, Error::SizeOverflow { .. }), "M = {m}: {e:?}");
    }
    // Huge but not wrapping: the buffer is too small (with the values).
    assert!(matches!(
        l.encode(ctx, &mut enc, 1 << 40, &a, None, &out),
        Err(Error::BufferTooSmall { .. })
    ));
    // F32Linear: N = 0 with a K whose padding wraps; a K the kernel cannot index.
    for k in [usize::MAX, usize::MAX - 2, 1usize << 40] {
        let e = F32Linear::new(ctx, &[], 0, k, None).unwrap_err();
        assert!(
            matches!(e, Error::SizeOverflow { .. } | Error::Unsupported(_)),
            "K = {k}: {e:?}"
        );
    }
    let f = F32Linear::new(ctx, &[1.0; 8], 2, 4, None).unwrap();
    let x = upload(ctx, "x", &[1.0f32; 8], storage).unwrap();
    let e = f.encode(ctx, &mut enc, usize::MAX, &x, &out).unwrap_err();
    assert!(matches!(e, Error::SizeOverflow { .. }), "{e:?}");
    // Weights: N = 0 with K = usize::MAX, and bytes outside their params' range.
    let p = QuantParams::per_tensor(0.1, 0, r8()).unwrap();
    let e = QuantizedWeights::from_quantized(ctx, &[], 0, usize::MAX, p.clone()).unwrap_err();
    assert!(matches!(e, Error::SizeOverflow { .. }), "{e:?}");
    let narrow = QuantParams::per_tensor(0.1, 0, QType::I8.narrow_range()).unwrap();
    let mut bytes = [1u8; 12];
    bytes[7] = (-128i8) as u8;
    let e = QuantizedWeights::from_quantized(ctx, &bytes, 3, 4, narrow.clone()).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidConfig { what, value, .. } if what.contains("[1, 3]") && value == "-128"),
        "{e:?}"
    );
    bytes[7] = (-127i8) as u8;
    assert!(QuantizedWeights::from_quantized(ctx, &bytes, 3, 4, narrow).is_ok());
    let u8_narrow = QuantParams::per_tensor(
        0.1,
        128,
        wgpu_quant::QRange::new(QType::U8, 1, 255).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        QuantizedWeights::from_quantized(ctx, &[0u8; 4], 1, 4, u8_narrow),
        Err(Error::InvalidConfig { .. })
    ));
    // Host-provided RowParams: zero point outside the storage type, scale not positive,
    // finite and normal (where the epilogue uses it).
    let per_row = layer(ctx, ActivationInput::PerRow { qtype: QType::I8 });
    let rp = |zero_point, scale| vec![RowParams { zero_point, scale }; 2];
    for zp in [128, -129, i32::MIN] {
        assert!(matches!(
            per_row.run_blocking(ctx, &[1u8; 8], 2, Some(&rp(zp, 1.0))),
            Err(Error::ZeroPointOutOfRange { value, .. }) if value == zp
        ));
    }
    let wp = QuantParams::per_tensor(0.1, 0, r8()).unwrap();
    let w = QuantizedWeights::from_quantized(ctx, &[1u8; 12], 3, 4, wp).unwrap();
    let dynamic = QLinear::new(
        ctx,
        w,
        ActivationInput::PerRow { qtype: QType::I8 },
        None,
        Epilogue::DequantF32(Dequant {
            scales: wgpu_quant::DequantScales::PerRowPerChannel {
                row_scales: vec![],
                channel_scales: vec![0.1],
            },
            bias: None,
            activation: Activation::None,
        }),
    )
    .unwrap();
    for s in [0.0, -1.0, f32::NAN, f32::INFINITY, 1e-40] {
        assert!(
            matches!(
                dynamic.run_blocking(ctx, &[1u8; 8], 2, Some(&rp(0, s))),
                Err(Error::InvalidScale { .. })
            ),
            "scale {s}"
        );
    }
    assert!(
        dynamic
            .run_blocking(ctx, &[1u8; 8], 2, Some(&rp(-128, 0.5)))
            .is_ok()
    );
    // Hand-built fixed-point multipliers the kernels do not implement.
    let a_p = QuantParams::per_tensor(0.1, 0, r8()).unwrap();
    let o_p = QuantParams::per_tensor(0.2, 0, r8()).unwrap();
    let wp = QuantParams::per_tensor(0.1, 0, r8()).unwrap();
    let good = Requant::fixed_point(
        &a_p,
        &wp,
        &o_p,
        Activation::None,
        FixedPointRounding::Single,
    )
    .unwrap();
    for (m0, shift, rounding) in [
        (-5, 0, FixedPointRounding::Single),
        (1 << 20, 0, FixedPointRounding::Single),
        (1 << 30, 31, FixedPointRounding::Single),
        (1 << 30, -32, FixedPointRounding::Double),
        (i32::MIN, 0, FixedPointRounding::Double),
    ] {
        let r = Requant {
            scaling: RequantScaling::FixedPoint {
                multipliers: vec![QuantizedMultiplier { m0, shift }],
                rounding,
            },
            ..good.clone()
        };
        let w = QuantizedWeights::from_quantized(ctx, &[1u8; 12], 3, 4, a_p.clone()).unwrap();
        let e = QLinear::new(ctx, w, st, None, Epilogue::Requant(r)).unwrap_err();
        assert!(
            matches!(e, Error::InvalidConfig { .. }),
            "({m0}, {shift}): {e:?}"
        );
    }
    // Aliasing: one buffer as an op's input and output, or as output and row params.
    let buf = create(ctx, "shared", 256, storage).unwrap();
    let aliased = |r: Result<(), Error>| matches!(r, Err(Error::BufferAliasing { .. }));
    let q = Quantizer::new(ctx, Convention::Onnx, &p, 2, 4).unwrap();
    assert!(aliased(q.encode(ctx, &mut enc, 2, &buf, &buf)));
    let dq = DynamicQuantizer::new(
        ctx,
        DynamicScheme::SymmetricPerToken,
        DynamicGranularity::PerRow,
        2,
        4,
    )
    .unwrap();
    let other = create(ctx, "other", 256, storage).unwrap();
    assert!(aliased(dq.encode(ctx, &mut enc, 2, &other, &buf, &buf)));
    assert!(aliased(dq.encode(ctx, &mut enc, 2, &buf, &buf, &other)));
    assert!(aliased(dq.encode(ctx, &mut enc, 2, &buf, &other, &buf)));
    assert!(aliased(l.encode(ctx, &mut enc, 2, &buf, None, &buf)));
    assert!(aliased(per_row.encode(
        ctx,
        &mut enc,
        2,
        &other,
        Some(&buf),
        &buf
    )));
    assert!(aliased(f.encode(ctx, &mut enc, 2, &buf, &buf)));
    assert!(aliased(wgpu_quant::gpu::quantize::encode_dequantize(
        ctx,
        &mut enc,
        &p,
        &[2, 4],
        &buf,
        &buf
    )));
    let dot4 = wgpu_quant::gpu::dot4::Dot4Kernel::new(ctx).unwrap();
    assert!(aliased(dot4.encode(ctx, &mut enc, &buf, &other, &buf, 4)));
    // Nothing was recorded, and the context still works.
    ctx.queue().submit([enc.finish()]);
    assert_eq!(
        l.run_blocking(ctx, &[1u8; 8], 2, None).unwrap(),
        wgpu_quant::reference::gemm::GemmOutput::I32(vec![4; 6])
    );
}
