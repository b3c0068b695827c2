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

/// Resident memory of this process in bytes (`VmRSS` in Linux's `/proc/self/status`). The
/// soak fails when it cannot be read: a memory check that silently reads 0 cannot fail.
#[cfg(target_os = "linux")]
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_else(|e| panic!("soak: cannot read /proc/self/status for the RSS: {e}"));
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or_else(|| panic!("soak: no VmRSS line in /proc/self/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("soak: unparsable RSS line {line:?}"));
    kib * 1024
}

/// The soak's cycle count: `SOAK_CYCLES`, else 10,000 (about 7 s in a debug build on
/// lavapipe; the README's figure is this default).
pub const SOAK_CYCLES_DEFAULT: usize = 10_000;

/// Encode/submit/readback cycles of one layer: every result equals the CPU reference (bit
/// for bit, or the rule-2 fused alternative per element for its f32 bias) and resident memory
/// stays flat. `SOAK_CYCLES` sets the count (default [`SOAK_CYCLES_DEFAULT`]).
///
/// Resident memory is per process and the other tests run in parallel threads of this one,
/// so the soak re-runs itself alone in a child process (`--exact stress::soak`, one test
/// thread) and measures there.
#[test]
fn soak() {
    if gpu().is_none() {
        return;
    }
    if std::env::var_os("WGPU_QUANT_SOAK_ALONE").is_some() {
        return soak_alone();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stress::soak", "--nocapture", "--test-threads=1"])
        .env("WGPU_QUANT_SOAK_ALONE", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!(
        "{}",
        stderr
            .lines()
            .filter(|l| l.starts_with("soak:"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the soak's own process failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

fn soak_alone() {
    use wgpu_quant::reference::gemm::{
        GemmInputs, QMatrix, matmul_i8, matmul_i8_fused_alternative,
    };
    let Some(ctx) = gpu() else { return };
    let cycles: usize = match std::env::var("SOAK_CYCLES") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("SOAK_CYCLES={v:?} is not a count")),
        Err(_) => SOAK_CYCLES_DEFAULT,
    };
    assert!(cycles >= 20, "a soak of {cycles} cycles measures nothing");
    let mut rng = Rng::new(91);
    let (m, n, k) = (8, 64, 128);
    // The layer's own data, rebuilt from the same seed for the reference.
    let layer = float_bias_layer(ctx, n, k, &mut rng);
    let a = rng.bytes(m * k);
    let mut rng = Rng::new(91);
    let a_params = QuantParams::per_tensor(0.03, 4, QType::U8.full_range()).unwrap();
    let w_scales: Vec<f32> = (0..n).map(|_| rng.uniform(0.001, 0.01)).collect();
    let w_params = QuantParams::per_axis(0, w_scales, vec![0; n], QType::I8.full_range()).unwrap();
    let bias: Vec<f32> = (0..n).map(|_| rng.uniform(-2.0, 2.0)).collect();
    let w = rng.bytes(n * k);
    let epilogue =
        Epilogue::DequantF32(Dequant::per_channel(&a_params, &w_params, Some(bias)).unwrap());
    assert_eq!(
        layer.epilogue(),
        &epilogue,
        "the reference rebuilds the layer's epilogue"
    );
    let inputs = GemmInputs {
        a: QMatrix {
            data: &a,
            qtype: QType::U8,
            rows: m,
            cols: k,
        },
        a_zero_points: &[4],
        w: QMatrix {
            data: &w,
            qtype: QType::I8,
            rows: n,
            cols: k,
        },
        w_zero_points: &vec![0; n],
        bias: &[],
    };
    let f32_bits = |o: GemmOutput| match o {
        GemmOutput::F32(v) => v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>(),
        other => panic!("{other:?}"),
    };
    let want = f32_bits(matmul_i8(&inputs, &epilogue).unwrap());
    let fused = f32_bits(
        matmul_i8_fused_alternative(&inputs, &epilogue)
            .unwrap()
            .expect("a float bias has a fused alternative"),
    );
    assert_eq!(want.len(), m * n);
    let warm = cycles / 10;
    let mut baseline = 0;
    let started = std::time::Instant::now();
    for i in 0..cycles {
        let got = f32_bits(layer.run_blocking(ctx, &a, m, None).unwrap());
        assert_eq!(got.len(), want.len(), "cycle {i}: length");
        if let Some(e) = (0..got.len()).find(|&e| got[e] != want[e] && got[e] != fused[e]) {
            panic!(
                "cycle {i}: element {e} = {:#010x}, reference {:#010x} or fused {:#010x}",
                got[e], want[e], fused[e]
            );
        }
        #[cfg(target_os = "linux")]
        if i + 1 == warm {
            baseline = rss_bytes();
        }
    }
    #[cfg(target_os = "linux")]
    {
        let end = rss_bytes();
        let growth = end.saturating_sub(baseline);
        eprintln!(
            "soak: {cycles} cycles in {:.1} s, RSS {} MiB after warm-up, {} MiB at the end",
            started.elapsed().as_secs_f64(),
            baseline >> 20,
            end >> 20
        );
        // Stated margin: 16 MiB for allocator and driver noise. A leak of one buffer, bind
        // group or readback per cycle (kilobytes each) exceeds it within the measured cycles
        // of the default count.
        assert!(
            growth <= 16 << 20,
            "RSS grew by {growth} bytes over {cycles} cycles"
        );
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (warm, &mut baseline);
        panic!(
            "soak: resident memory is read from /proc on Linux only; {cycles} cycles ran in {:.1} s but the memory check cannot run here",
            started.elapsed().as_secs_f64()
        );
    }
}
