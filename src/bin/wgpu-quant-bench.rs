//! `wgpu-quant-bench`: FP32 vs INT8 on the user's adapter.
//!
//! This first version measures the two adapter peaks (f32 FMA and `dot4I8Packed`), the
//! ceiling every kernel figure is later compared with; the GEMM/GEMV sweeps build on it.

use std::process::ExitCode;

use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::peak::{PeakKind, measure_peak};

struct Args {
    quick: bool,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        runs: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--runs" => {
                let v = it.next().ok_or("--runs needs a value")?;
                args.runs = v
                    .parse()
                    .ok()
                    .filter(|&r| r > 0)
                    .ok_or(format!("--runs: '{v}' is not a positive integer"))?;
            }
            "-h" | "--help" => {
                println!("usage: wgpu-quant-bench [--quick] [--runs N]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument '{other}' (try --help)")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wgpu-quant-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let ctx = match Context::headless() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wgpu-quant-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(info) = ctx.adapter_info() {
        println!(
            "adapter: {} ({:?}, driver {} {})",
            info.name, info.backend, info.driver, info.driver_info
        );
    }
    let workgroups = if args.quick { 256 } else { 1024 };
    let runs = if args.quick {
        args.runs.min(5)
    } else {
        args.runs
    };
    println!("timing: wall clock around submit + wait, median of {runs} runs after warm-up");
    println!("{:<28} {:>12} {:>12}", "microkernel", "median ms", "G op/s");
    let mut results = Vec::new();
    for (name, kind) in [
        ("f32 fma peak (GFLOP/s)", PeakKind::F32Fma),
        ("dot4I8Packed peak (GOP/s)", PeakKind::Dot4I8),
    ] {
        match measure_peak(&ctx, kind, workgroups, runs) {
            Ok(s) => {
                println!(
                    "{:<28} {:>12.3} {:>12.1}",
                    name,
                    s.median.as_secs_f64() * 1e3,
                    s.giga_ops_per_second
                );
                results.push(s.giga_ops_per_second);
            }
            Err(e) => {
                eprintln!("wgpu-quant-bench: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "INT8 dot4 / FP32 fma throughput ratio: {:.2}x",
        results[1] / results[0]
    );
    ExitCode::SUCCESS
}
