//! The inference API in the browser: every `Linear` kind and calibrated models equal their
//! CPU twins bit for bit (the native `tests/nn.rs`).

use wasm_bindgen_test::wasm_bindgen_test;
use wgpu_quant::Error;
use wgpu_quant::nn::{
    BiasMode, F32Model, FloatLinear, FloatModel, HostTensor, InputSpec, Linear, LinearConfig,
    OutputSpec, QuantConfig, QuantizedModel, Tensor,
};
use wgpu_quant::prelude::*;

use crate::common::{Rng, Test, count};

fn act_params(convention: Convention, qtype: QType, lo: f32, hi: f32) -> QuantParams {
    QuantParams::from_range(convention, &Scheme::affine(qtype), lo, hi).unwrap()
}

/// Every layer kind the API accepts: convention x static/dynamic input x output (f32, f16,
/// i32, quantized) x activation x bias mode x GEMV/GEMM shape; GPU == reference.
#[wasm_bindgen_test]
async fn every_linear_kind_equals_its_reference() {
    let t = Test::start("nn::every_linear_kind_equals_its_reference").await;
    let ctx = &t.ctx;
    let mut rng = Rng::new(9);
    let mut checked = 0;
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
                            let what = format!(
                                "{convention:?} dyn={dynamic} {output_kind} {activation:?} {bias_mode:?} {m}x{n}x{k}"
                            );
                            let layer = match Linear::new(ctx, &w, n, k, Some(&bias), config) {
                                Ok(layer) => layer,
                                // The combinations the API refuses, as natively.
                                Err(Error::Mismatch(_) | Error::InvalidConfig { .. }) => continue,
                                Err(e) => panic!("{what}: {e}"),
                            };
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
                            let out = layer.run(ctx, &gpu_in).await.unwrap();
                            let got = HostTensor::from_gpu(ctx, &out).await.unwrap();
                            assert_eq!(got.rows, m, "{what}");
                            assert_eq!(got.spec, expected.spec, "{what}");
                            let (g, e) = (got.data.bits(), expected.data.bits());
                            assert_eq!(g.len(), e.len(), "{what}");
                            match layer.reference_fused_alternative(&xq).unwrap() {
                                // Rule 2: each element is the unfused or the fused result.
                                Some(fused) => {
                                    let f = fused.data.bits();
                                    for i in 0..e.len() {
                                        assert!(
                                            g[i] == e[i] || g[i] == f[i],
                                            "{what}: element {i}"
                                        );
                                    }
                                }
                                None => assert_eq!(g, e, "{what}"),
                            }
                            count(e.len());
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} layers checked");
    t.done();
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

/// Calibrated static (i8 and u8 activations) and dynamic models under every convention:
/// the GPU output equals `model.reference` bit for bit at several batch sizes.
#[wasm_bindgen_test]
async fn quantized_models_equal_their_reference() {
    let t = Test::start("nn::quantized_models_equal_their_reference").await;
    let ctx = &t.ctx;
    let mut rng = Rng::new(21);
    let float = random_mlp(&mut rng, &[19, 33, 16, 10]);
    let samples = rng.normals(200 * 19, 1.0);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for convention in Convention::ALL {
        for config in [
            QuantConfig::static_int8(),
            QuantConfig::static_int8().activation_scheme(Scheme::affine(QType::U8)),
            QuantConfig::dynamic_int8(),
        ] {
            let config = config.convention(convention).max_batch(64);
            let mut model = QuantizedModel::calibrate(ctx, &float, &samples, 200, &config).unwrap();
            for rows in [1, 7, 64] {
                let x = rng.normals(rows * 19, 1.0);
                let gpu_y = model.run(ctx, &x, rows).await.unwrap();
                let cpu_y = model.reference(&x, rows).unwrap();
                assert_eq!(gpu_y.len(), rows * 10);
                assert_eq!(
                    bits(&gpu_y),
                    bits(&cpu_y),
                    "{convention:?} {:?} rows {rows}",
                    config.mode
                );
                count(cpu_y.len());
            }
        }
    }
    // The FP32 model of the same network runs too (within its bound, checked natively; here:
    // it runs, and its output is finite).
    let mut f32_model = F32Model::new(ctx, &float, 8).unwrap();
    let x = rng.normals(8 * 19, 1.0);
    let y = f32_model.run(ctx, &x, 8).await.unwrap();
    assert!(y.len() == 80 && y.iter().all(|v| v.is_finite()));
    t.done();
}
