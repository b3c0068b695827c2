//! The inference API: tensors, layers and models on the GPU equal their CPU twins bit for
//! bit, and every mismatch between what a layer was built for and what it is given is a
//! typed error.

use wgpu_quant::Error;
use wgpu_quant::nn::argmax_rows;
use wgpu_quant::nn::{
    BiasMode, FloatLinear, FloatModel, HostData, HostTensor, InputSpec, Linear, LinearConfig,
    OutputSpec, QuantConfig, QuantMode, QuantizedModel, Stage, Tensor, TensorSpec, quantize_bias,
};
use wgpu_quant::prelude::*;

use crate::common::{Rng, gpu};

fn act_params(convention: Convention, qtype: QType, lo: f32, hi: f32) -> QuantParams {
    QuantParams::from_range(convention, &Scheme::affine(qtype), lo, hi).unwrap()
}

/// Every layer kind, GPU == reference bit for bit.
#[test]
fn every_linear_kind_equals_its_reference() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(9);
    let mut checked = 0;
    let mut fused_checked = 0;
    for convention in Convention::ALL {
        for dynamic in [false, true] {
            for (oi, output_kind) in ["f32", "f16", "i32", "q"].iter().enumerate() {
                for activation in [Activation::None, Activation::Relu, Activation::Relu6] {
                    for bias_mode in [BiasMode::Auto, BiasMode::Float, BiasMode::Int32] {
                        for &(m, n, k) in &[(1usize, 5usize, 7usize), (9, 33, 20)] {
                            let in_type = if (oi + m) % 2 == 0 {
                                QType::I8
                            } else {
                                QType::U8
                            };
                            let out_params = act_params(convention, QType::I8, -3.0, 5.0);
                            let output = match *output_kind {
                                "f32" => OutputSpec::F32,
                                "f16" => OutputSpec::F16,
                                "i32" => OutputSpec::I32,
                                _ => OutputSpec::Quantized(out_params.clone()),
                            };
                            let input = if dynamic {
                                InputSpec::Dynamic {
                                    scheme: if in_type == QType::U8 {
                                        DynamicScheme::OnnxLinear { qtype: QType::U8 }
                                    } else {
                                        DynamicScheme::SymmetricPerToken
                                    },
                                    granularity: DynamicGranularity::PerRow,
                                }
                            } else {
                                InputSpec::Static(act_params(convention, in_type, -2.0, 2.5))
                            };
                            let w = rng.normals(n * k, 0.3);
                            let bias: Vec<f32> = rng.normals(n, 0.5);
                            let config = LinearConfig::new(input.clone(), output.clone())
                                .convention(convention)
                                .activation(activation)
                                .bias_mode(bias_mode);
                            let layer = Linear::new(ctx, &w, n, k, Some(&bias), config);
                            // The combinations the API refuses, each with its typed error.
                            let refused = (dynamic && bias_mode == BiasMode::Int32)
                                || (output == OutputSpec::I32
                                    && (activation != Activation::None
                                        || dynamic
                                        || bias_mode == BiasMode::Float));
                            if refused {
                                assert!(
                                    matches!(
                                        layer,
                                        Err(Error::Mismatch(_) | Error::InvalidConfig { .. })
                                    ),
                                    "{convention:?} dyn={dynamic} {output_kind} {activation:?} {bias_mode:?}: {layer:?}"
                                );
                                continue;
                            }
                            let layer = layer.unwrap();
                            let x = HostTensor::f32(rng.normals(m * k, 1.0), m, k).unwrap();
                            let xq = match &input {
                                InputSpec::Static(p) => x.quantize(convention, p).unwrap(),
                                InputSpec::Dynamic {
                                    scheme,
                                    granularity,
                                } => x.dynamic_quantize(*scheme, *granularity).unwrap(),
                            };
                            let expected = layer.reference(&xq).unwrap();
                            let gpu_in = Tensor::from_host(ctx, &xq).unwrap();
                            let out = layer.run_blocking(ctx, &gpu_in).unwrap();
                            let got = HostTensor::from_gpu_blocking(ctx, &out).unwrap();
                            assert_eq!(got.rows, m);
                            assert_eq!(got.spec, expected.spec);
                            assert_eq!(got.data.bits().len(), expected.data.bits().len());
                            match layer.reference_fused_alternative(&xq).unwrap() {
                                // Rule 2: each element is the unfused or the fused result.
                                Some(fused) => {
                                    let (e, f) = (expected.data.bits(), fused.data.bits());
                                    for (i, g) in got.data.bits().iter().enumerate() {
                                        assert!(
                                            *g == e[i] || *g == f[i],
                                            "{convention:?} dyn={dynamic} {output_kind} {activation:?} {bias_mode:?}: element {i}"
                                        );
                                    }
                                    fused_checked += 1;
                                }
                                None => assert_eq!(
                                    got.data.bits(),
                                    expected.data.bits(),
                                    "{convention:?} dyn={dynamic} {output_kind} {activation:?} {bias_mode:?} {m}x{n}x{k}"
                                ),
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} layers checked");
    assert!(
        fused_checked > 20,
        "only {fused_checked} layers with an f32 bias"
    );
}

#[test]
fn a_tensor_quantized_with_other_params_is_refused() {
    let Some(ctx) = gpu() else { return };
    let p = act_params(Convention::Onnx, QType::I8, -1.0, 1.0);
    let other_zp = QuantParams::per_tensor(p.scale(0), p.zero_point(0) + 1, p.range()).unwrap();
    let other_scale =
        QuantParams::per_tensor(p.scale(0) * 1.5, p.zero_point(0), p.range()).unwrap();
    let layer = Linear::new(
        ctx,
        &[0.5; 8 * 4],
        8,
        4,
        None,
        LinearConfig::new(InputSpec::Static(p.clone()), OutputSpec::F32),
    )
    .unwrap();
    let mut out = Tensor::new(ctx, TensorSpec::f32(8), 4).unwrap();
    for (what, params, cols) in [
        ("zero point", other_zp, 4),
        ("scale", other_scale, 4),
        ("columns", p.clone(), 5),
    ] {
        let x = Tensor::from_quantized(ctx, &vec![0; 2 * cols], 2, cols, params).unwrap();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let err = layer.encode(ctx, &mut encoder, &x, &mut out).unwrap_err();
        assert!(
            matches!(&err, Error::TensorMismatch { expected, found, .. } if expected != found),
            "{what}: {err}"
        );
    }
    // An f32 tensor where a quantized one is expected, and a wrong output tensor.
    let xf = Tensor::from_f32(ctx, &[0.0; 8], 2, 4).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    assert!(matches!(
        layer.encode(ctx, &mut encoder, &xf, &mut out),
        Err(Error::TensorMismatch { .. })
    ));
    let x = Tensor::from_quantized(ctx, &[0; 8], 2, 4, p.clone()).unwrap();
    let mut wrong_out = Tensor::new(ctx, TensorSpec::f32(7), 4).unwrap();
    assert!(matches!(
        layer.encode(ctx, &mut encoder, &x, &mut wrong_out),
        Err(Error::TensorMismatch { .. })
    ));
    let mut small_out = Tensor::new(ctx, TensorSpec::f32(8), 1).unwrap();
    assert!(matches!(
        layer.encode(ctx, &mut encoder, &x, &mut small_out),
        Err(Error::CapacityExceeded {
            rows: 2,
            capacity: 1,
            ..
        })
    ));
}

#[test]
fn bias_is_quantized_in_the_accumulator_scale() {
    let a = QuantParams::per_tensor(0.5, 0, QType::I8.full_range()).unwrap();
    let w =
        QuantParams::per_axis(0, vec![0.25, 0.125], vec![0, 0], QType::I8.narrow_range()).unwrap();
    // s_acc = 0.125 and 0.0625: 1.0 -> 8, 0.03125 -> 0.5 ties to even -> 0, 0.09375 -> 1.5 -> 2.
    assert_eq!(quantize_bias(&[1.0, 0.03125], &a, &w).unwrap(), vec![8, 0]);
    assert_eq!(
        quantize_bias(&[-1.0, 0.09375], &a, &w).unwrap(),
        vec![-8, 2]
    );
    let err = quantize_bias(&[0.0, 3.0e9 * 0.0625], &a, &w).unwrap_err();
    assert!(
        matches!(err, Error::BiasOverflow { channel: 1, .. }),
        "{err}"
    );
    assert!(matches!(
        quantize_bias(&[f32::NAN, 0.0], &a, &w),
        Err(Error::NonFiniteInput { .. })
    ));
}

#[test]
fn tensors_round_trip_and_check_capacity() {
    let Some(ctx) = gpu() else { return };
    let x: Vec<f32> = (0..15).map(|i| i as f32 * -0.75).collect();
    let mut t = Tensor::from_f32(ctx, &x, 3, 5).unwrap();
    assert_eq!(t.read_f32_blocking(ctx).unwrap(), x);
    // Fewer rows into the same tensor, then more than it holds.
    t.write_f32(ctx, &x[..5], 1).unwrap();
    assert_eq!(t.read_f32_blocking(ctx).unwrap(), x[..5]);
    assert!(matches!(
        t.write_f32(ctx, &[0.0; 20], 4),
        Err(Error::CapacityExceeded {
            rows: 4,
            capacity: 3,
            ..
        })
    ));
    assert!(matches!(
        t.write_f32(ctx, &[0.0; 7], 2),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        t.read_f16_blocking(ctx),
        Err(Error::TensorMismatch { .. })
    ));
    let halves: Vec<half::f16> = x.iter().map(|&v| half::f16::from_f32(v)).collect();
    let h = Tensor::from_f16(ctx, &halves, 3, 5).unwrap();
    let back: Vec<u16> = h
        .read_f16_blocking(ctx)
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(back, halves.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    let p = act_params(Convention::Onnx, QType::U8, -1.0, 1.0);
    let bytes: Vec<u8> = (0..21).map(|i| (i * 11) as u8).collect();
    let q = Tensor::from_quantized(ctx, &bytes, 3, 7, p).unwrap();
    assert_eq!(q.read_quantized_blocking(ctx).unwrap(), bytes);
}

fn random_mlp(rng: &mut Rng, sizes: &[usize]) -> FloatModel {
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(i, s)| {
            let (k, n) = (s[0], s[1]);
            let act = if i + 2 == sizes.len() {
                Activation::None
            } else {
                Activation::Relu
            };
            let w = rng.normals(n * k, (2.0 / k as f32).sqrt());
            FloatLinear::new(
                format!("fc{}", i + 1),
                w,
                n,
                k,
                Some(rng.normals(n, 0.1)),
                act,
            )
            .unwrap()
        })
        .collect();
    FloatModel::new(layers).unwrap()
}

/// Calibrated static and dynamic models: the GPU output equals `model.reference` bit for bit
/// at several batch sizes through one model, under each convention.
#[test]
fn quantized_models_equal_their_reference() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(21);
    let float = random_mlp(&mut rng, &[19, 33, 16, 10]);
    let samples = rng.normals(200 * 19, 1.0);
    for convention in Convention::ALL {
        for config in [
            QuantConfig::static_int8(),
            QuantConfig::static_int8().activation_scheme(Scheme::affine(QType::U8)),
            QuantConfig::dynamic_int8(),
        ] {
            let config = config.convention(convention).max_batch(64);
            let mut model = QuantizedModel::calibrate(ctx, &float, &samples, 200, &config).unwrap();
            let report = model.report().unwrap();
            assert_eq!(report.layers.len(), 3);
            for l in &report.layers {
                // 8-bit quantization of well-scaled data: far above noise, far below exact.
                assert!(l.sqnr_db > 25.0 && l.sqnr_db < 80.0, "{report}");
                assert!(l.max_abs_error > 0.0, "{report}");
            }
            assert_eq!(report.layers[0].name, "fc1");
            assert_eq!(report.layers[1].shape, [16, 33]);
            for rows in [1, 7, 64] {
                let x = rng.normals(rows * 19, 1.0);
                let gpu_y = model.run_blocking(ctx, &x, rows).unwrap();
                let cpu_y = model.reference(&x, rows).unwrap();
                assert_eq!(gpu_y.len(), rows * 10);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&gpu_y),
                    bits(&cpu_y),
                    "{convention:?} {:?} rows {rows}",
                    config.mode
                );
            }
            let x = rng.normals(65 * 19, 1.0);
            assert!(matches!(
                model.run_blocking(ctx, &x, 65),
                Err(Error::CapacityExceeded {
                    rows: 65,
                    capacity: 64,
                    ..
                })
            ));
        }
    }
}

/// `QuantizedModel::tune` measures each layer's shape class once on a context, switches every
/// layer to the winners (reported as measured), and the outputs keep their bits.
#[test]
fn a_tuned_model_runs_the_winners_and_keeps_its_bits() {
    use wgpu_quant::gpu::tune::ChoiceSource;
    let Some(ctx) = gpu() else { return };
    // Its own context over the shared device: an empty tuning cache.
    let fresh = Context::from_wgpu(ctx.device().clone(), ctx.queue().clone());
    let mut rng = Rng::new(33);
    let float = random_mlp(&mut rng, &[24, 40, 10]);
    let samples = rng.normals(64 * 24, 1.0);
    for config in [QuantConfig::static_int8(), QuantConfig::dynamic_int8()] {
        let config = config.max_batch(32);
        let mut model = QuantizedModel::calibrate(&fresh, &float, &samples, 64, &config).unwrap();
        let x = rng.normals(32 * 24, 1.0);
        let before = model.run_blocking(&fresh, &x, 32).unwrap();
        let chosen = model.tune_blocking(&fresh).unwrap();
        assert_eq!(chosen.len(), 2);
        for (layer, kernels) in model.layers().zip(&chosen) {
            assert_eq!(kernels.source, ChoiceSource::Measured);
            assert_eq!(layer.kernel(), *kernels);
        }
        let after = model.run_blocking(&fresh, &x, 32).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&after), bits(&before), "{:?}", config.mode);
        assert_eq!(bits(&after), bits(&model.reference(&x, 32).unwrap()));
    }
    // Two layer shapes, GEMM and GEMV classes each: four measured classes, each once.
    let report = fresh.tuning_report();
    assert_eq!(report.len(), 4, "{report:#?}");
}

/// The model records into the caller's encoder with the caller's tensors.
#[test]
fn model_encodes_into_the_callers_encoder() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(5);
    let float = random_mlp(&mut rng, &[8, 12, 4]);
    let samples = rng.normals(32 * 8, 1.0);
    let mut model =
        QuantizedModel::calibrate(ctx, &float, &samples, 32, &QuantConfig::static_int8()).unwrap();
    let x = rng.normals(5 * 8, 1.0);
    let input = Tensor::from_f32(ctx, &x, 5, 8).unwrap();
    let mut output = Tensor::new(ctx, model.output_spec(), 16).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    model
        .encode(ctx, &mut encoder, &input, &mut output)
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    let y = output.read_f32_blocking(ctx).unwrap();
    let expected = model.reference(&x, 5).unwrap();
    assert_eq!(
        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // A quantized tensor where the model takes f32.
    let p = act_params(Convention::Onnx, QType::I8, -1.0, 1.0);
    let wrong = Tensor::from_quantized(ctx, &[0; 40], 5, 8, p).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    assert!(matches!(
        model.encode(ctx, &mut encoder, &wrong, &mut output),
        Err(Error::TensorMismatch { .. })
    ));
}

/// Two layers whose params disagree (a zero point differs by one) cannot form a model.
#[test]
fn mismatched_layers_are_refused_at_build() {
    let Some(ctx) = gpu() else { return };
    let p1 = act_params(Convention::Onnx, QType::I8, -1.0, 1.0);
    let p2 = act_params(Convention::Onnx, QType::I8, -2.0, 3.0);
    let p2_shifted =
        QuantParams::per_tensor(p2.scale(0), p2.zero_point(0) + 1, p2.range()).unwrap();
    let first = Linear::new(
        ctx,
        &[0.1; 6 * 4],
        6,
        4,
        None,
        LinearConfig::new(InputSpec::Static(p1.clone()), OutputSpec::Quantized(p2)),
    )
    .unwrap();
    let second = Linear::new(
        ctx,
        &[0.1; 3 * 6],
        3,
        6,
        None,
        LinearConfig::new(InputSpec::Static(p2_shifted), OutputSpec::F32),
    )
    .unwrap();
    let stages = vec![
        Stage::quantize(ctx, Convention::Onnx, p1.clone(), 8, 4).unwrap(),
        Stage::linear(first),
        Stage::linear(second),
    ];
    let err = QuantizedModel::from_stages(ctx, Convention::Onnx, QuantMode::Static, stages, 8)
        .unwrap_err();
    assert!(
        matches!(&err, Error::TensorMismatch { what, .. } if what.contains("stage 1")),
        "{err}"
    );
}

#[test]
fn host_data_bits_cover_row_params() {
    let t = HostData::Quantized {
        bytes: vec![1, 2],
        row_params: vec![(3, 0.5)],
    };
    assert_eq!(t.bits(), vec![1, 2, 3, 0.5f32.to_bits()]);
}

/// Save, load, same bits: static and dynamic, every convention.
#[test]
fn saved_models_load_to_identical_outputs() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(77);
    let float = random_mlp(&mut rng, &[12, 20, 6]);
    let samples = rng.normals(64 * 12, 1.0);
    let dir = std::env::temp_dir().join(format!("wgpu-quant-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for convention in Convention::ALL {
        for config in [QuantConfig::static_int8(), QuantConfig::dynamic_int8()] {
            let config = config.convention(convention).max_batch(32);
            let mut model = QuantizedModel::calibrate(ctx, &float, &samples, 64, &config).unwrap();
            let path = dir.join(format!("{convention:?}-{:?}.safetensors", config.mode));
            model.save(&path).unwrap();
            let mut loaded = QuantizedModel::load(ctx, &path, None).unwrap();
            assert_eq!(loaded.max_batch(), 32);
            assert_eq!(loaded.convention(), convention);
            let x = rng.normals(9 * 12, 1.5);
            let a = model.run_blocking(ctx, &x, 9).unwrap();
            let b = loaded.run_blocking(ctx, &x, 9).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(a.len(), 9 * 6);
            assert_eq!(bits(&a), bits(&b), "{convention:?} {:?}", config.mode);
            assert_eq!(bits(&loaded.reference(&x, 9).unwrap()), bits(&b));
            for (l, m) in model.layers().zip(loaded.layers()) {
                assert_eq!(l.weight_bytes(), m.weight_bytes());
                assert_eq!(l.epilogue(), m.epilogue());
                assert_eq!(l.bias_i32(), m.bias_i32());
            }
        }
    }
    // Not a model, and a model cut short: typed errors.
    let bytes = {
        let mut w = SafeTensorsWriter::new();
        w.add_f32("x", &[1.0], &[1]).unwrap();
        w.to_bytes().unwrap()
    };
    let file = SafeTensorsFile::from_bytes(bytes).unwrap();
    assert!(matches!(
        QuantizedModel::from_safetensors(ctx, &file, None),
        Err(Error::Format(_))
    ));
    let model =
        QuantizedModel::calibrate(ctx, &float, &samples, 64, &QuantConfig::static_int8()).unwrap();
    let full = model.to_safetensors().unwrap();
    for cut in [8, full.len() / 2, full.len() - 1] {
        let r = SafeTensorsFile::from_bytes(full[..cut].to_vec());
        assert!(r.is_err(), "a file cut at {cut} bytes was accepted");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A dead channel (weights near zero) with a live bias: onnxruntime widens that channel's
/// weight scale so the i32 bias fits, and the layer builds.
#[test]
fn tiny_weight_scales_are_widened_for_the_bias() {
    let a = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
    let w =
        QuantParams::per_axis(0, vec![1e-30, 0.02], vec![0, 0], QType::I8.narrow_range()).unwrap();
    let bias = [-0.17f32, 0.5];
    assert!(matches!(
        quantize_bias(&bias, &a, &w),
        Err(Error::BiasOverflow { channel: 0, .. })
    ));
    let widened = wgpu_quant::nn::widen_weight_scales_for_bias(&w, &a, &bias).unwrap();
    assert!(widened.scale(0) > 1e-30);
    assert_eq!(widened.scale(1).to_bits(), 0.02f32.to_bits());
    let q = quantize_bias(&bias, &a, &widened).unwrap();
    assert!(
        q[0].unsigned_abs() < 1 << 31 && q[0] < -100_000_000,
        "{q:?}"
    );
    let Some(ctx) = gpu() else { return };
    let mut weights = vec![1e-32f32; 4];
    weights.extend([0.3, -0.2, 0.1, 0.05]);
    let layer = Linear::new(
        ctx,
        &weights,
        2,
        4,
        Some(&bias),
        LinearConfig::new(InputSpec::Static(a), OutputSpec::F32),
    )
    .unwrap();
    assert!(layer.weight_params().scale(0) > 1e-30);
}

/// A model's stages must agree with the model: capacity, convention and mode.
#[test]
fn stages_that_disagree_with_the_model_are_refused() {
    let Some(ctx) = gpu() else { return };
    let p = act_params(Convention::Onnx, QType::I8, -1.0, 1.0);
    let layer = |c: Convention| {
        Linear::new(
            ctx,
            &[0.1; 3 * 4],
            3,
            4,
            None,
            LinearConfig::new(InputSpec::Static(p.clone()), OutputSpec::F32).convention(c),
        )
        .unwrap()
    };
    let build = |stages, max_batch, mode| {
        QuantizedModel::from_stages(ctx, Convention::Onnx, mode, stages, max_batch)
    };
    let quantize = || Stage::quantize(ctx, Convention::Onnx, p.clone(), 8, 4).unwrap();
    let ok = build(
        vec![quantize(), Stage::linear(layer(Convention::Onnx))],
        8,
        QuantMode::Static,
    );
    assert!(ok.is_ok(), "{ok:?}");
    let err = build(
        vec![quantize(), Stage::linear(layer(Convention::Onnx))],
        9,
        QuantMode::Static,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::CapacityExceeded {
                rows: 9,
                capacity: 8,
                ..
            }
        ),
        "{err}"
    );
    let err = build(
        vec![quantize(), Stage::linear(layer(Convention::TfLite))],
        8,
        QuantMode::Static,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Mismatch(_)), "{err}");
    let dynamic = QuantMode::Dynamic {
        scheme: DynamicScheme::SymmetricPerToken,
        granularity: DynamicGranularity::PerRow,
    };
    let err = build(
        vec![quantize(), Stage::linear(layer(Convention::Onnx))],
        8,
        dynamic,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Mismatch(_)), "{err}");
    // Per-axis params cannot make a quantize stage.
    let axis = QuantParams::per_axis(1, vec![0.1; 4], vec![0; 4], QType::I8.full_range()).unwrap();
    assert!(matches!(
        Stage::quantize(ctx, Convention::Onnx, axis, 8, 4),
        Err(Error::Mismatch(_))
    ));
}

/// A dynamic model on rows that are all zero (the smallest row scale) with dead weight
/// channels: GPU and reference agree, because dynamic weight scales have a floor.
#[test]
fn dynamic_models_handle_zero_rows_and_dead_channels() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(3);
    let mut w = rng.normals(6 * 8, 0.5);
    w[..8].fill(3e-30); // a dead channel
    let float = FloatModel::new(vec![
        FloatLinear::new("fc1", w, 6, 8, Some(vec![0.25; 6]), Activation::Relu).unwrap(),
        FloatLinear::new("fc2", rng.normals(2 * 6, 0.5), 2, 6, None, Activation::None).unwrap(),
    ])
    .unwrap();
    let samples = rng.normals(16 * 8, 1.0);
    let mut model =
        QuantizedModel::calibrate(ctx, &float, &samples, 16, &QuantConfig::dynamic_int8()).unwrap();
    let mut x = vec![0.0f32; 3 * 8];
    x[8..16].copy_from_slice(&rng.normals(8, 1e-6));
    let y = model.run_blocking(ctx, &x, 3).unwrap();
    let r = model.reference(&x, 3).unwrap();
    assert_eq!(
        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        r.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // NaN samples are refused in dynamic mode too.
    let mut bad = samples.clone();
    bad[5] = f32::NAN;
    assert!(matches!(
        QuantizedModel::calibrate(ctx, &float, &bad, 16, &QuantConfig::dynamic_int8()),
        Err(Error::NonFiniteInput { index: 5, .. })
    ));
}

/// Any edit of a saved model (a renamed tensor, a flipped data bit) is caught by its
/// checksum; a float model with inconsistent public fields is refused.
#[test]
fn edited_models_and_inconsistent_layers_are_refused() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(11);
    let float = random_mlp(&mut rng, &[6, 5, 3]);
    let samples = rng.normals(20 * 6, 1.0);
    let model =
        QuantizedModel::calibrate(ctx, &float, &samples, 20, &QuantConfig::static_int8()).unwrap();
    let bytes = model.to_safetensors().unwrap();
    assert!(QuantizedModel::from_bytes(ctx, bytes.clone(), None).is_ok());
    let find = |needle: &[u8]| {
        bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    };
    let mut renamed = bytes.clone();
    let at = find(b"stage.1.bias\"") + "stage.1.bia".len();
    renamed[at] = b'r';
    assert!(matches!(
        QuantizedModel::from_bytes(ctx, renamed, None),
        Err(Error::Format(_))
    ));
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        QuantizedModel::from_bytes(ctx, flipped, None),
        Err(Error::Format(_))
    ));
    let mut layer = float.layers()[0].clone();
    layer.weight.truncate(3);
    assert!(matches!(
        FloatModel::new(vec![layer]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(argmax_rows(&[1.0, 2.0], 0).is_empty());
}

/// Bytes outside the params' range are refused (-128 under narrow [-127, 127]).
#[test]
fn quantized_tensors_refuse_bytes_outside_their_range() {
    let Some(ctx) = gpu() else { return };
    let p = QuantParams::per_tensor(0.1, 0, QType::I8.narrow_range()).unwrap();
    assert!(matches!(
        Tensor::from_quantized(ctx, &[0x80; 8], 2, 4, p.clone()),
        Err(Error::ZeroPointOutOfRange { value: -128, .. })
    ));
    assert!(Tensor::from_quantized(ctx, &[0x81; 8], 2, 4, p).is_ok());
}
