//! criterion benches: the GPU kernels (GEMM, GEMV, quantize, dynamic quantize; FP32 and
//! INT8), timed with `iter_custom` around submit and the wait for completion, and the CPU
//! exact division against hardware `/`. Sizes are small so `cargo bench -- --quick` stays
//! within a few minutes on lavapipe. Without an adapter the GPU groups are skipped with a
//! message.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::buffers::{create, upload};
use wgpu_quant::gpu::dynamic::{DynamicQuantizer, encode_dynamic_quantize};
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::gpu::matmul_f32::F32Linear;
use wgpu_quant::gpu::quantize::encode_quantize;
use wgpu_quant::quant::calibrate::MinMax;
use wgpu_quant::quant::divide::div_f32_exact;
use wgpu_quant::quant::pack::words_per_row;
use wgpu_quant::reference::dynamic::{DynamicGranularity, DynamicScheme};
use wgpu_quant::{Convention, Epilogue, QType, QuantParams, Scheme};

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
        let mut g = c.benchmark_group(format!("{name} {m}x{n}x{k}"));
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
        let layer = QLinear::new(
            &ctx,
            weights,
            ActivationInput::Static {
                qtype: QType::I8,
                zero_point: 0,
            },
            None,
            Epilogue::I32,
        )
        .unwrap();
        let a_q = upload(
            &ctx,
            "a q",
            &vec![0x0102_03fdu32; m * words_per_row(k)],
            wgpu::BufferUsages::STORAGE,
        )
        .unwrap();
        let y_q = create(&ctx, "y q", (m * n * 4) as u64, usage).unwrap();
        g.bench_function("int8 I32", |b| {
            b.iter_custom(|iters| {
                gpu_time(&ctx, iters, &mut |e| {
                    layer.encode(&ctx, e, m, &a_q, None, &y_q).unwrap()
                })
            })
        });
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
    let mut g = c.benchmark_group(format!("quantize {rows}x{cols}"));
    g.throughput(Throughput::Elements((rows * cols) as u64));
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
    let mut g = c.benchmark_group(format!("quantize {rows}x{cols}"));
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

criterion_group!(benches, matmuls, division);
criterion_main!(benches);
