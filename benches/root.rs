//! criterion benches, one group per kernel family, each with its `Throughput`: FP32 and INT8
//! GEMM and GEMV (INT8 with the I32, `DequantF32` and `RequantFixedPoint` epilogues;
//! elements = multiply-accumulates M·N·K), static quantize and dequantize and dynamic
//! quantize (elements = values), a small model run f32 in to f32 out (elements = rows), and
//! the CPU exact division against hardware `/`. GPU work is timed with `iter_custom` around
//! submit and the wait for completion. Sizes and sample counts are small so
//! `cargo bench -- --quick` stays within a few minutes on lavapipe. No timing is asserted
//! anywhere (timings are noisy); ratios come from one run of the benchmark binary. Without
//! an adapter the GPU groups are skipped with a message.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::buffers::{create, upload};
use wgpu_quant::gpu::dynamic::{DynamicQuantizer, encode_dynamic_quantize};
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::gpu::matmul_f32::F32Linear;
use wgpu_quant::gpu::quantize::{encode_dequantize, encode_quantize};
use wgpu_quant::nn::{
    F32Model, FloatLinear, FloatModel, QuantConfig, QuantizedModel, Tensor, TensorSpec,
};
use wgpu_quant::quant::calibrate::MinMax;
use wgpu_quant::quant::divide::div_f32_exact;
use wgpu_quant::quant::pack::words_per_row;
use wgpu_quant::reference::dynamic::{DynamicGranularity, DynamicScheme};
use wgpu_quant::{
    Activation, Convention, Dequant, Epilogue, FixedPointRounding, QType, QuantParams, Requant,
    Scheme,
};

/// GPU groups: few samples, short windows (each sample already waits for the device).
fn quick_group<'a>(
    c: &'a mut Criterion,
    name: String,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g
}

fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
        .collect()
}

/// Runs `record` `iters` times (one submit each) and returns the total time including waits.
fn gpu_time(
    ctx: &Context,
    iters: u64,
    record: &mut dyn FnMut(&mut wgpu::CommandEncoder),
) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        record(&mut encoder);
        ctx.queue().submit([encoder.finish()]);
        ctx.wait_idle().expect("wait");
    }
    start.elapsed()
}

fn matmuls(c: &mut Criterion) {
    let Ok(ctx) = Context::headless() else {
        eprintln!("SKIPPED GPU benches: no adapter");
        return;
    };
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    for (name, m, n, k) in [("gemm", 256, 256, 256), ("gemv", 1, 1024, 1024)] {
        let mut g = quick_group(c, format!("{name} {m}x{n}x{k}"));
        g.throughput(Throughput::Elements((m * n * k) as u64));
        let w = data(n * k, 1);
        let a = data(m * k, 2);
        let f32_layer = F32Linear::new(&ctx, &w, n, k, None).unwrap();
        let a_f32 = upload(&ctx, "a", &a, wgpu::BufferUsages::STORAGE).unwrap();
        let y_f32 = create(&ctx, "y", (m * n * 4) as u64, usage).unwrap();
        g.bench_function("f32", |b| {
            b.iter_custom(|iters| {
                gpu_time(&ctx, iters, &mut |e| {
                    f32_layer.encode(&ctx, e, m, &a_f32, &y_f32).unwrap()
                })
            })
        });
        let weights = QuantizedWeights::quantize(
            &ctx,
            &w,
            n,
            k,
            Convention::Onnx,
            MinMax::new(),
            &Scheme::symmetric(QType::I8),
        )
        .unwrap();
        let w_params = weights.params().clone();
        let a_params = QuantParams::per_tensor(1.0 / 256.0, 0, QType::I8.full_range()).unwrap();
        let out_params = QuantParams::per_tensor(0.05, 3, QType::I8.full_range()).unwrap();
        let input = ActivationInput::Static {
            qtype: QType::I8,
            zero_point: 0,
        };
        let requant = Requant::fixed_point(
            &a_params,
            &w_params,
            &out_params,
            Activation::None,
            FixedPointRounding::Single,
        )
        .unwrap();
        let epilogues = [
            ("int8 I32", Epilogue::I32, n),
            (
                "int8 DequantF32",
                Epilogue::DequantF32(Dequant::per_channel(&a_params, &w_params, None).unwrap()),
                n,
            ),
            (
                "int8 RequantFixedPoint",
                Epilogue::Requant(requant),
                words_per_row(n),
            ),
        ];
        let a_q = upload(
            &ctx,
            "a q",
            &vec![0x0102_03fdu32; m * words_per_row(k)],
            wgpu::BufferUsages::STORAGE,
        )
        .unwrap();
        for (label, epilogue, out_words) in epilogues {
            let layer = QLinear::new(&ctx, weights.clone(), input, None, epilogue).unwrap();
            let y_q = create(&ctx, "y q", (m * out_words * 4) as u64, usage).unwrap();
            g.bench_function(label, |b| {
                b.iter_custom(|iters| {
                    gpu_time(&ctx, iters, &mut |e| {
                        layer.encode(&ctx, e, m, &a_q, None, &y_q).unwrap()
                    })
                })
            });
        }
        g.finish();
    }

    let (rows, cols) = (64, 1024);
    let x = upload(
        &ctx,
        "x",
        &data(rows * cols, 3),
        wgpu::BufferUsages::STORAGE,
    )
    .unwrap();
    let q = create(&ctx, "q", (rows * words_per_row(cols) * 4) as u64, usage).unwrap();
    let row_params = create(&ctx, "rows", (rows * 8) as u64, usage).unwrap();
    let mut g = quick_group(c, format!("quantize {rows}x{cols}"));
    g.throughput(Throughput::Elements((rows * cols) as u64));
    let y = create(&ctx, "y", (rows * cols * 4) as u64, usage).unwrap();
    for convention in Convention::ALL {
        let params = QuantParams::per_tensor(0.01, 3, QType::I8.full_range()).unwrap();
        g.bench_function(format!("static {convention:?}"), |b| {
            b.iter_custom(|iters| {
                gpu_time(&ctx, iters, &mut |e| {
                    encode_quantize(&ctx, e, convention, &params, &[rows, cols], &x, &q).unwrap()
                })
            })
        });
    }
    let params = QuantParams::per_tensor(0.01, 3, QType::I8.full_range()).unwrap();
    g.bench_function("dequantize", |b| {
        b.iter_custom(|iters| {
            gpu_time(&ctx, iters, &mut |e| {
                encode_dequantize(&ctx, e, &params, &[rows, cols], &q, &y).unwrap()
            })
        })
    });
    for (label, scheme) in [
        (
            "dynamic onnx u8",
            DynamicScheme::OnnxLinear { qtype: QType::U8 },
        ),
        ("dynamic per-token", DynamicScheme::SymmetricPerToken),
    ] {
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                gpu_time(&ctx, iters, &mut |e| {
                    encode_dynamic_quantize(
                        &ctx,
                        e,
                        scheme,
                        DynamicGranularity::PerRow,
                        rows,
                        cols,
                        &x,
                        &q,
                        &row_params,
                    )
                    .unwrap()
                })
            })
        });
    }
    g.finish();

    // A model's hidden layer: 540 rows of 128, through prepared quantizers (one pass per row,
    // three per tensor).
    let (rows, cols) = (540, 128);
    let x = upload(
        &ctx,
        "x",
        &data(rows * cols, 6),
        wgpu::BufferUsages::STORAGE,
    )
    .unwrap();
    let q = create(&ctx, "q", (rows * words_per_row(cols) * 4) as u64, usage).unwrap();
    let row_params = create(&ctx, "rows", (rows * 8) as u64, usage).unwrap();
    let mut g = quick_group(c, format!("quantize {rows}x{cols}"));
    g.throughput(Throughput::Elements((rows * cols) as u64));
    for (label, scheme) in [
        (
            "dynamic onnx u8",
            DynamicScheme::OnnxLinear { qtype: QType::U8 },
        ),
        ("dynamic per-token", DynamicScheme::SymmetricPerToken),
    ] {
        for granularity in [DynamicGranularity::PerRow, DynamicGranularity::PerTensor] {
            let dq = DynamicQuantizer::new(&ctx, scheme, granularity, rows, cols).unwrap();
            g.bench_function(format!("{label} {granularity:?}"), |b| {
                b.iter_custom(|iters| {
                    gpu_time(&ctx, iters, &mut |e| {
                        dq.encode(&ctx, e, rows, &x, &q, &row_params).unwrap()
                    })
                })
            });
        }
    }
    g.finish();
}

/// A small model (64 → 128 → 64 → 10, `ReLU`, seeded weights) at 256 rows, f32 in and f32
/// out: FP32, static INT8 and dynamic INT8, each one `encode` of the whole model.
fn model(c: &mut Criterion) {
    let Ok(ctx) = Context::headless() else {
        eprintln!("SKIPPED model benches: no adapter");
        return;
    };
    let (rows, widths) = (256, [64, 128, 64, 10]);
    let layers: Vec<FloatLinear> = widths
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let last = i + 2 == widths.len();
            FloatLinear::new(
                format!("fc{i}"),
                data(w[0] * w[1], 10 + i as u32),
                w[1],
                w[0],
                Some(data(w[1], 20 + i as u32)),
                if last {
                    Activation::None
                } else {
                    Activation::Relu
                },
            )
            .unwrap()
        })
        .collect();
    let float = FloatModel::new(layers).unwrap();
    let x = data(rows * widths[0], 30);
    let input = Tensor::from_f32(&ctx, &x, rows, widths[0]).unwrap();
    let mut g = quick_group(c, format!("model 64-128-64-10 x{rows}"));
    g.throughput(Throughput::Elements(rows as u64));

    let mut fp32 = F32Model::new(&ctx, &float, rows).unwrap();
    let mut y = Tensor::new(&ctx, TensorSpec::f32(10), rows).unwrap();
    g.bench_function("f32", |b| {
        b.iter_custom(|iters| {
            gpu_time(&ctx, iters, &mut |e| {
                fp32.encode(&ctx, e, &input, &mut y).unwrap()
            })
        })
    });
    for (label, config) in [
        ("int8 static", QuantConfig::static_int8()),
        ("int8 dynamic", QuantConfig::dynamic_int8()),
    ] {
        let config = config.max_batch(rows);
        let mut q = QuantizedModel::calibrate(&ctx, &float, &x, rows, &config).unwrap();
        let mut y = Tensor::new(&ctx, q.output_spec(), rows).unwrap();
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                gpu_time(&ctx, iters, &mut |e| {
                    q.encode(&ctx, e, &input, &mut y).unwrap()
                })
            })
        });
    }
    g.finish();
}

fn division(c: &mut Criterion) {
    let pairs: Vec<(f32, f32)> = data(4096, 4)
        .into_iter()
        .zip(data(4096, 5))
        .map(|(a, b)| (a, b + 1.0))
        .collect();
    let mut g = c.benchmark_group("cpu divide");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("div_f32_exact", |b| {
        b.iter(|| {
            pairs
                .iter()
                .map(|&(x, y)| div_f32_exact(black_box(x), black_box(y)))
                .sum::<f32>()
        })
    });
    g.bench_function("hardware /", |b| {
        b.iter(|| {
            pairs
                .iter()
                .map(|&(x, y)| black_box(x) / black_box(y))
                .sum::<f32>()
        })
    });
    g.finish();
}

criterion_group!(benches, matmuls, model, division);
criterion_main!(benches);
