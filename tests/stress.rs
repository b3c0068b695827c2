//! Concurrency, determinism and soak.

use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::reference::gemm::GemmOutput;
use wgpu_quant::{Dequant, Epilogue, QType, QuantParams};

use crate::common::{Rng, gpu};
use crate::gpu_gemm::{GemmTester, Kind};

/// Eight threads share one context, each building its own layers and running them in a
/// loop; every result equals the reference.
#[test]
fn eight_threads_share_one_context() {
    let Some(ctx) = gpu() else { return };
    std::thread::scope(|s| {
        for t in 0..8u64 {
            s.spawn(move || {
                for i in 0..6u64 {
                    let kind = [Kind::I32, Kind::RequantFloat, Kind::F16][(i % 3) as usize];
                    GemmTester::new()
                        .shape(3 + t as usize * 5, 17 + i as usize, 29 + t as usize)
                        .a_type(if (t + i) % 2 == 0 {
                            QType::U8
                        } else {
                            QType::I8
                        })
                        .per_channel_w_zero_points()
                        .epilogue(kind)
                        .seed(t * 100 + i)
                        .check(ctx);
                }
            });
        }
    });
}

fn float_bias_layer(ctx: &Context, n: usize, k: usize, rng: &mut Rng) -> QLinear {
    let a = QuantParams::per_tensor(0.03, 4, QType::U8.full_range()).unwrap();
    let w = QuantParams::per_axis(
        0,
        (0..n).map(|_| rng.uniform(0.001, 0.01)).collect(),
        vec![0; n],
        QType::I8.full_range(),
    )
    .unwrap();
    let bias: Vec<f32> = (0..n).map(|_| rng.uniform(-2.0, 2.0)).collect();
    let weights =
        QuantizedWeights::from_quantized(ctx, &rng.bytes(n * k), n, k, w.clone()).unwrap();
    let epilogue = Epilogue::DequantF32(Dequant::per_channel(&a, &w, Some(bias)).unwrap());
    QLinear::new(
        ctx,
        weights,
        ActivationInput::Static {
            qtype: QType::U8,
            zero_point: 4,
        },
        None,
        epilogue,
    )
    .unwrap()
}

/// The same inputs give identical bits across runs, across the GEMV and GEMM shapes (a row
/// computed as part of M = 2 and of M = 37), and across split and unsplit dispatches, even
/// for the f32-bias epilogue whose contract would allow either of two roundings.
#[test]
fn determinism() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(90);
    let (n, k) = (45, 96);
    let layer = float_bias_layer(ctx, n, k, &mut rng);
    let a = rng.bytes(37 * k);
    let run = |ctx: &Context, m: usize| match layer.run_blocking(ctx, &a[..m * k], m, None).unwrap()
    {
        GemmOutput::F32(v) => v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>(),
        other => panic!("{other:?}"),
    };
    let full = run(ctx, 37);
    assert_eq!(run(ctx, 37), full, "run to run");
    assert_eq!(run(ctx, 2), full[..2 * n], "GEMV rows vs GEMM rows");
    let small = ctx.clone().with_binding_limit(2048);
    let mut rng = Rng::new(90);
    let split_layer = float_bias_layer(&small, n, k, &mut rng);
    let split = match split_layer.run_blocking(&small, &a, 37, None).unwrap() {
        GemmOutput::F32(v) => v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(split, full, "split vs unsplit");
}

/// Resident memory of this process in bytes (Linux `/proc/self/statm`), if readable.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Encode/submit/readback cycles of one layer: results stay identical and resident memory
/// stays flat. `SOAK_CYCLES` sets the count (default 2000 here; the note records a
/// 10,000-cycle run).
#[test]
fn soak() {
    let Some(ctx) = gpu() else { return };
    let cycles: usize = std::env::var("SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut rng = Rng::new(91);
    let (m, n, k) = (8, 64, 128);
    let layer = float_bias_layer(ctx, n, k, &mut rng);
    let a = rng.bytes(m * k);
    let first = layer.run_blocking(ctx, &a, m, None).unwrap();
    let warm = cycles / 10;
    let mut baseline = 0;
    for i in 0..cycles {
        assert_eq!(
            layer.run_blocking(ctx, &a, m, None).unwrap(),
            first,
            "cycle {i}"
        );
        if i + 1 == warm {
            baseline = rss_bytes().unwrap_or(0);
        }
    }
    let end = rss_bytes().unwrap_or(0);
    let growth = end.saturating_sub(baseline);
    eprintln!(
        "soak: {cycles} cycles, RSS {} MiB after warm-up, {} MiB at the end",
        baseline >> 20,
        end >> 20
    );
    // Stated margin: 16 MiB for allocator and driver noise. A leak of one buffer, bind group
    // or readback per cycle (kilobytes each) exceeds it within the default 1800 measured
    // cycles.
    assert!(
        growth <= 16 << 20,
        "RSS grew by {growth} bytes over {cycles} cycles"
    );
}
