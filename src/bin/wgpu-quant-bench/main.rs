//! `wgpu-quant-bench`: FP32 vs INT8 on the user's adapter: how fast, how accurate, and how
//! close to the adapter's measured peaks. `wgpu-quant-bench --help` lists the flags.
//!
//! Order: adapter peaks (f32 fma, `dot4I8Packed`, streaming reads; each the best of several
//! kernel shapes, reported with the one that won); GEMM FP32 vs INT8 (I32, `DequantF32`,
//! `RequantFixedPoint` epilogues); GEMV (M = 1); end to end (f32 in, f32 out: dynamic
//! quantization + INT8 GEMM with per-row dequantization, against the FP32 GEMM), with the SQNR
//! of every INT8 output against the FP32 output on the same data; then whole models (section
//! `model`). Each FP32/INT8 group runs interleaved in one process, after a warm-up, and
//! reports the median of N runs. "% of peak" is the row's GOP/s over the f32 fma peak (FP32)
//! or the `dot4I8Packed` peak (INT8), and for GEMV its weight bytes per second over the read
//! bandwidth peak.
//!
//! Modules: `args` (the command line), `measure` (timing and shared state), `report` (rows,
//! tables, JSON), `chart` (SVG), `compare` (`--compare`), and one per section: `peaks`,
//! `gemm` (GEMM and GEMV), `e2e`, `model`.

mod args;
mod chart;
mod compare;
mod e2e;
mod gemm;
mod measure;
mod model;
mod peaks;
mod report;

use std::process::ExitCode;

use clap::Parser;
use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::peak::PeakKind;
use wgpu_quant::gpu::timer::GpuTimer;
use wgpu_quant::{Error, Result};

use crate::args::Args;
use crate::measure::{Bench, Ui};
use crate::report::{Adapter, Peaks, Report};

/// A file error as the crate's typed error, naming the flag and the path.
fn file_error(flag: &str, path: &str, e: &dyn std::fmt::Display) -> Error {
    Error::InvalidConfig {
        what: flag.into(),
        value: path.into(),
        reason: e.to_string(),
    }
}

fn run(args: &Args) -> Result<()> {
    let runs = args.runs();
    let gemm: Vec<_> = gemm::gemm_shapes(args.quick)
        .into_iter()
        .filter(|&(m, n, k)| args.wanted(&format!("gemm {m}x{n}x{k}")))
        .collect();
    let gemv: Vec<_> = gemm::gemv_shapes(args.quick)
        .into_iter()
        .filter(|&(n, k)| args.wanted(&format!("gemv 1x{n}x{k}")))
        .collect();
    let e2e: Vec<_> = e2e::e2e_shapes(args.quick)
        .into_iter()
        .filter(|&(m, n, k)| args.wanted(&format!("e2e {m}x{n}x{k}")))
        .collect();
    let (digits, ffn) = (args.wanted("model digits-mlp"), args.wanted("model ffn"));
    let want_peaks =
        args.wanted("peaks") || !gemm.is_empty() || !gemv.is_empty() || !e2e.is_empty();
    // Peaks, the shapes, the models.
    let steps = 3 * u64::from(want_peaks)
        + (gemm.len() + gemv.len() + e2e.len()) as u64
        + u64::from(digits)
        + u64::from(ffn);
    let ui = Ui::new(steps, args.json_to_stdout());

    let ctx = Context::headless()?;
    let adapter = Adapter::of(&ctx.capabilities());
    ui.out(&format!(
        "adapter: {} ({}, driver {}, dot product {}, self-test {})",
        adapter.name, adapter.backend, adapter.driver, adapter.dot_product, adapter.dot4_self_test
    ));
    let timer = GpuTimer::new(&ctx)?;
    let timing = timer.source().as_str();
    ui.out(&format!(
        "timing: {timing}; median of {runs} runs after a warm-up; FP32/INT8 pairs interleaved"
    ));

    let mut bench = Bench {
        ctx: ctx.clone(),
        timer,
        runs,
        peaks: Peaks::default(),
        records: Vec::new(),
        models: Vec::new(),
        ui,
        tune: !args.no_tune,
    };

    if want_peaks {
        for kind in PeakKind::ALL {
            bench.ui.start(&format!("peaks {}", kind.as_str()));
            let record = peaks::measure(&bench, kind, args.quick)?;
            match kind {
                PeakKind::F32Fma => bench.peaks.f32_fma = Some(record),
                PeakKind::Dot4I8 => bench.peaks.dot4_i8 = Some(record),
                PeakKind::ReadBandwidth => bench.peaks.read_bandwidth = Some(record),
            }
            bench.ui.done();
        }
        report::print_peaks(&bench.ui, &bench.peaks);
    }
    for (i, &(m, n, k)) in gemm.iter().enumerate() {
        bench.ui.start(&format!("gemm {m}x{n}x{k}"));
        bench.linear("gemm", m, n, k, 100 + i as u64)?;
        bench.ui.done();
    }
    for (i, &(n, k)) in gemv.iter().enumerate() {
        bench.ui.start(&format!("gemv 1x{n}x{k}"));
        bench.linear("gemv", 1, n, k, 200 + i as u64)?;
        bench.ui.done();
    }
    for (i, &(m, n, k)) in e2e.iter().enumerate() {
        bench.ui.start(&format!("e2e {m}x{n}x{k}"));
        bench.end_to_end(m, n, k, 300 + i as u64)?;
        bench.ui.done();
    }
    if digits {
        bench.ui.start("model digits-mlp");
        bench.digits()?;
        bench.ui.done();
    }
    if ffn {
        bench.ui.start("model ffn 4096-11008-4096");
        bench.ffn(args.quick)?;
        bench.ui.done();
    }
    bench.ui.finish();
    let autotune: Vec<report::AutotuneRecord> = ctx
        .tuning_report()
        .iter()
        .map(report::AutotuneRecord::from_tune)
        .collect();
    if !autotune.is_empty() {
        report::print_autotune(&bench.ui, &autotune);
    }

    if !bench.records.is_empty() {
        report::print_records(&bench.ui, &bench.records);
    }
    if !bench.models.is_empty() {
        report::print_models(&bench.ui, &bench.models, runs, timing);
    }
    let doc = Report {
        version: env!("CARGO_PKG_VERSION"),
        adapter: &adapter,
        timing,
        quick: args.quick,
        runs,
        peaks: &bench.peaks,
        results: &bench.records,
        model: &bench.models,
        autotune: &autotune,
    };
    let json = serde_json::to_value(&doc).map_err(|e| file_error("--json", "-", &e))?;
    if let Some(path) = &args.compare {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| file_error("--compare", &shown, &e))?;
        let old: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| file_error("--compare", &shown, &e))?;
        bench.ui.out(&format!("\nthis run against {shown}:\n"));
        for line in compare::compare(&old, &json) {
            bench.ui.out(&line);
        }
    }
    if let Some(path) = &args.json {
        // From the typed report, so the fields keep their declared order.
        let mut text =
            serde_json::to_string_pretty(&doc).map_err(|e| file_error("--json", path, &e))?;
        text.push('\n');
        if args.json_to_stdout() {
            print!("{text}");
        } else {
            std::fs::write(path, text).map_err(|e| file_error("--json", path, &e))?;
            bench.ui.out(&format!("wrote {path}"));
        }
    }
    if let Some(path) = &args.svg {
        let title = format!("wgpu-quant on {} ({timing})", adapter.name);
        let shown = path.display().to_string();
        std::fs::write(path, chart::svg(&bench.records, &bench.peaks, &title))
            .map_err(|e| file_error("--svg", &shown, &e))?;
        bench.ui.out(&format!("wrote {shown}"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgpu-quant-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
