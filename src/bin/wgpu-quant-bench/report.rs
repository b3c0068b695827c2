//! What a run reports: the rows (GEMM, GEMV, end to end, whole models), the peaks with their
//! winning shapes, the adapter; printed as Markdown tables and written as JSON.

use serde::Serialize;
use wgpu_quant::gpu::capabilities::Capabilities;

use crate::measure::Ui;

/// Which peak bounds a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeakKindKey {
    /// f32 fma (FP32 GEMM).
    F32Fma,
    /// `dot4I8Packed` (INT8 GEMM).
    Dot4I8,
    /// Streaming reads (GEMV, quantize).
    ReadBandwidth,
}

impl PeakKindKey {
    /// The JSON key of [`Peaks`].
    pub fn as_str(self) -> &'static str {
        match self {
            PeakKindKey::F32Fma => "f32_fma",
            PeakKindKey::Dot4I8 => "dot4_i8",
            PeakKindKey::ReadBandwidth => "read_bandwidth",
        }
    }
}

/// One peak: the best of its candidate shapes, with the shape that won.
#[derive(Debug, Clone, Serialize)]
pub struct PeakRecord {
    /// Work per second ÷ 1e9 (GFLOP/s, GOP/s or GB/s).
    pub value: f64,
    /// `GFLOP/s`, `GOP/s` or `GB/s`.
    pub unit: &'static str,
    /// The winning shape, in words.
    pub shape: String,
    /// Its workgroup size.
    pub workgroup_size: u32,
    /// Its accumulator chains (the throughput kernels) or 4 (the read kernel).
    pub chains: u32,
    /// Its steps per invocation (the read kernel; 0 otherwise).
    pub steps: u32,
    /// Workgroups per dispatch.
    pub workgroups: u32,
    /// Work per dispatch (FLOP, ops or bytes).
    pub work: u64,
    /// Timed runs per shape; the fastest counts.
    pub runs: usize,
    /// Every shape measured, `(shape, value)`.
    pub candidates: Vec<(String, f64)>,
}

/// The three peaks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Peaks {
    /// f32 fma, GFLOP/s (2 per fma).
    pub f32_fma: Option<PeakRecord>,
    /// `dot4I8Packed` + add, GOP/s (8 per step).
    pub dot4_i8: Option<PeakRecord>,
    /// Streaming reads, GB/s.
    pub read_bandwidth: Option<PeakRecord>,
}

impl Peaks {
    /// A peak's value, when measured.
    pub fn value(&self, key: PeakKindKey) -> Option<f64> {
        let record = match key {
            PeakKindKey::F32Fma => &self.f32_fma,
            PeakKindKey::Dot4I8 => &self.dot4_i8,
            PeakKindKey::ReadBandwidth => &self.read_bandwidth,
        };
        record.as_ref().map(|r| r.value)
    }
}

/// One GEMM, GEMV or end-to-end row.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// `gemm`, `gemv` or `e2e`.
    pub op: &'static str,
    /// `f32` or `int8`.
    pub precision: &'static str,
    /// The epilogue (`none` for FP32).
    pub epilogue: &'static str,
    /// Rows.
    pub m: usize,
    /// Output features.
    pub n: usize,
    /// Input features.
    pub k: usize,
    /// Timed runs.
    pub runs: usize,
    /// Median time, ms.
    pub median_ms: f64,
    /// Fastest, ms.
    pub min_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// 2·M·N·K / median, ÷ 1e9.
    pub gops: f64,
    /// Weight bytes / median, ÷ 1e9.
    pub gbps: f64,
    /// The row's throughput as a percentage of the peak named by `peak` (GB/s for GEMV,
    /// GOP/s otherwise); absent when that peak was not measured.
    pub pct_of_peak: Option<f64>,
    /// `f32_fma`, `dot4_i8` or `read_bandwidth`.
    pub peak: &'static str,
    /// The kernel that ran (INT8: tile, loads, dot formulation and the choice's source).
    pub kernel: Option<String>,
    /// SQNR of the INT8 output against the FP32 output, dB.
    pub sqnr_db: Option<f64>,
}

/// One whole-model row: FP32, static INT8 and dynamic INT8 on the same input, interleaved.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRecord {
    /// `digits-mlp` or `ffn`.
    pub name: &'static str,
    /// The layer widths, input first (`64-128-64-10`).
    pub shape: String,
    /// Rows.
    pub rows: usize,
    /// Timed runs.
    pub runs: usize,
    /// FP32 median, ms.
    pub fp32_ms: f64,
    /// FP32 fastest, ms.
    pub fp32_min_ms: f64,
    /// Static INT8 median, ms.
    pub static_ms: f64,
    /// Static INT8 fastest, ms.
    pub static_min_ms: f64,
    /// Dynamic INT8 median, ms.
    pub dynamic_ms: f64,
    /// Dynamic INT8 fastest, ms.
    pub dynamic_min_ms: f64,
    /// FP32 time / static INT8 time.
    pub fp32_over_static: f64,
    /// FP32 time / dynamic INT8 time.
    pub fp32_over_dynamic: f64,
    /// The static model's GPU output equals its CPU reference bit for bit.
    pub static_bit_exact: bool,
    /// The dynamic model's GPU output equals its CPU reference bit for bit.
    pub dynamic_bit_exact: bool,
    /// SQNR of the static INT8 output against the FP32 model's output, dB.
    pub static_sqnr_db: f64,
    /// SQNR of the dynamic INT8 output against the FP32 model's output, dB.
    pub dynamic_sqnr_db: f64,
}

/// The adapter, as the JSON records it.
#[derive(Debug, Clone, Serialize)]
pub struct Adapter {
    /// Adapter name.
    pub name: String,
    /// Backend (`Vulkan`, `Metal`, ...).
    pub backend: String,
    /// Driver and version.
    pub driver: String,
    /// `native` or `polyfill`: how the INT8 kernels' packed dot product runs.
    pub dot_product: &'static str,
    /// `passed`, `failed` or `not run`.
    pub dot4_self_test: &'static str,
    /// The self-test's failure, when it failed.
    pub dot4_self_test_detail: Option<String>,
    /// Timestamp queries available.
    pub timestamp_queries: bool,
    /// `max_storage_buffer_binding_size`.
    pub max_storage_buffer_binding_size: u64,
}

impl Adapter {
    /// From the context's capabilities.
    pub fn of(caps: &Capabilities) -> Self {
        Adapter {
            name: caps.adapter_name.clone().unwrap_or_default(),
            backend: caps.backend.map(|b| format!("{b:?}")).unwrap_or_default(),
            driver: caps.driver.clone().unwrap_or_default(),
            dot_product: caps.dot_product.as_str(),
            dot4_self_test: caps.dot4_self_test.as_str(),
            dot4_self_test_detail: match &caps.dot4_self_test {
                wgpu_quant::gpu::capabilities::Dot4SelfTest::Failed(why) => Some(why.clone()),
                _ => None,
            },
            timestamp_queries: caps.timestamp_queries,
            max_storage_buffer_binding_size: caps.max_storage_buffer_binding_size,
        }
    }
}

/// The whole JSON document.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// The binary's version.
    pub version: &'static str,
    /// The adapter.
    pub adapter: &'a Adapter,
    /// `gpu_timestamps` or `wall`.
    pub timing: &'static str,
    /// `--quick` was given.
    pub quick: bool,
    /// Timed runs per configuration.
    pub runs: usize,
    /// The peaks.
    pub peaks: &'a Peaks,
    /// GEMM, GEMV and end-to-end rows.
    pub results: &'a [Record],
    /// Whole-model rows.
    pub model: &'a [ModelRecord],
    /// The autotune's measurements, one per shape class (empty with `--no-tune`).
    pub autotune: &'a [AutotuneRecord],
}

/// One shape class the autotune measured: every candidate's time and the winner.
#[derive(Debug, Clone, Serialize)]
pub struct AutotuneRecord {
    /// `gemm` or `gemv`, with K and N rounded up to powers of two and whether rows are
    /// whole vec4s.
    pub class: String,
    /// The shape it was timed at, `[M, N, K]`.
    pub timed_at: [usize; 3],
    /// Each candidate kernel and its best time.
    pub candidates: Vec<AutotuneCandidate>,
    /// The fastest candidate.
    pub winner: String,
}

/// One candidate of an [`AutotuneRecord`].
#[derive(Debug, Clone, Serialize)]
pub struct AutotuneCandidate {
    /// The kernel (tile, loads, dot-product formulation).
    pub kernel: String,
    /// Its best time, ms.
    pub ms: f64,
}

impl AutotuneRecord {
    /// The record of one measured class.
    pub fn from_tune(r: &wgpu_quant::gpu::tune::TuneRecord) -> Self {
        let c = r.class;
        AutotuneRecord {
            class: format!(
                "{} K<=2^{} N<=2^{}{}",
                if c.gemv { "gemv" } else { "gemm" },
                c.k_log2,
                c.n_log2,
                if c.vec4_able { " vec4-able" } else { "" }
            ),
            timed_at: [r.shape.0, r.shape.1, r.shape.2],
            candidates: r
                .timings
                .iter()
                .map(|(k, ms)| AutotuneCandidate {
                    kernel: k.to_string(),
                    ms: *ms,
                })
                .collect(),
            winner: r.winner.to_string(),
        }
    }
}

/// The autotune table: per shape class, each candidate's time relative to the winner.
pub fn print_autotune(ui: &Ui, records: &[AutotuneRecord]) {
    ui.out("\nAutotune (best of the timed runs per candidate; the winner runs):\n");
    ui.out("| shape class | timed at (M×N×K) | candidate | ms | time / winner's |");
    ui.out("|---|---|---|---|---|");
    for r in records {
        let best = r
            .candidates
            .iter()
            .map(|c| c.ms)
            .fold(f64::INFINITY, f64::min);
        for c in &r.candidates {
            let mark = if c.kernel == r.winner {
                " **winner**"
            } else {
                ""
            };
            ui.out(&format!(
                "| {} | {}×{}×{} | {}{} | {:.3} | {:.2}x |",
                r.class,
                r.timed_at[0],
                r.timed_at[1],
                r.timed_at[2],
                c.kernel,
                mark,
                c.ms,
                c.ms / best
            ));
        }
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.digits$}"))
}

/// The peaks, one line each.
pub fn print_peaks(ui: &Ui, peaks: &Peaks) {
    for (label, p) in [
        ("f32 fma", &peaks.f32_fma),
        ("dot4I8Packed (8 ops per dot4)", &peaks.dot4_i8),
        ("read bandwidth", &peaks.read_bandwidth),
    ] {
        if let Some(p) = p {
            ui.out(&format!(
                "peak {label}: {:.1} {} ({}; fastest of {} runs per shape)",
                p.value, p.unit, p.shape, p.runs
            ));
        }
    }
}

/// The GEMM/GEMV/e2e table and the FP32/INT8 ratios.
pub fn print_records(ui: &Ui, records: &[Record]) {
    ui.out(
        "\n| op | M×N×K | precision | epilogue | median ms (min–max) | GOP/s | % of peak | GB/s weights | SQNR dB |",
    );
    ui.out("|---|---|---|---|---|---|---|---|---|");
    for r in records {
        let peak = match r.peak {
            "read_bandwidth" => " (bw)",
            "f32_fma" => " (fma)",
            _ => " (dot4)",
        };
        ui.out(&format!(
            "| {} | {}×{}×{} | {} | {} | {:.3} ({:.3}–{:.3}) | {:.1} | {}{} | {:.2} | {} |",
            r.op,
            r.m,
            r.n,
            r.k,
            r.precision,
            r.epilogue,
            r.median_ms,
            r.min_ms,
            r.max_ms,
            r.gops,
            opt(r.pct_of_peak, 1),
            peak,
            r.gbps,
            opt(r.sqnr_db, 1)
        ));
    }
    ui.out("\nFP32 time / INT8 time, same shape, same run:");
    for r in records.iter().filter(|r| r.precision == "int8") {
        if let Some(f) = records
            .iter()
            .find(|f| f.precision == "f32" && f.op == r.op && (f.m, f.n, f.k) == (r.m, r.n, r.k))
        {
            ui.out(&format!(
                "  {} {}×{}×{} {}: {:.2}x",
                r.op,
                r.m,
                r.n,
                r.k,
                r.epilogue,
                f.median_ms / r.median_ms
            ));
        }
    }
    let kernels: Vec<&Record> = records.iter().filter(|r| r.kernel.is_some()).collect();
    if !kernels.is_empty() {
        ui.out("\nKernels that ran (INT8: tile, loads, dot-product formulation, and where the choice came from):");
        for r in kernels {
            ui.out(&format!(
                "  {} {}×{}×{} {}: {}",
                r.op,
                r.m,
                r.n,
                r.k,
                r.epilogue,
                r.kernel.as_deref().unwrap_or_default()
            ));
        }
    }
}

/// The whole-model table, the ratios, and the targets.
pub fn print_models(ui: &Ui, models: &[ModelRecord], runs: usize, timing: &str) {
    let exact = |b: bool| if b { "yes" } else { "NO" };
    ui.out(&format!(
        "\nWhole models, f32 in and f32 out ({timing}, median of {runs} interleaved runs after a warm-up; min in parentheses):\n"
    ));
    ui.out(
        "| model | rows | FP32 ms | static INT8 ms | dynamic INT8 ms | FP32/static | FP32/dynamic | bit-exact static / dynamic | SQNR dB vs FP32 static / dynamic |",
    );
    ui.out("|---|---|---|---|---|---|---|---|---|");
    for r in models {
        ui.out(&format!(
            "| {} {} | {} | {:.3} ({:.3}) | {:.3} ({:.3}) | {:.3} ({:.3}) | {:.2}x | {:.2}x | {} / {} | {:.1} / {:.1} |",
            r.name,
            r.shape,
            r.rows,
            r.fp32_ms,
            r.fp32_min_ms,
            r.static_ms,
            r.static_min_ms,
            r.dynamic_ms,
            r.dynamic_min_ms,
            r.fp32_over_static,
            r.fp32_over_dynamic,
            exact(r.static_bit_exact),
            exact(r.dynamic_bit_exact),
            r.static_sqnr_db,
            r.dynamic_sqnr_db
        ));
    }
    let all_exact = models
        .iter()
        .all(|r| r.static_bit_exact && r.dynamic_bit_exact);
    ui.out(&format!(
        "\nbit-exact: {} (every INT8 model's GPU output against QuantizedModel::reference)",
        exact(all_exact)
    ));
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    ui.out("targets (FP32 time / INT8 time, same run):");
    for r in models.iter().filter(|r| r.name == "ffn") {
        ui.out(&format!(
            "  feed-forward {} x{}: static {:.2}x (target >= 2: {}), dynamic {:.2}x (target >= 1.5: {})",
            r.shape,
            r.rows,
            r.fp32_over_static,
            verdict(r.fp32_over_static >= 2.0),
            r.fp32_over_dynamic,
            verdict(r.fp32_over_dynamic >= 1.5)
        ));
    }
    for r in models
        .iter()
        .filter(|r| r.name == "digits-mlp" && r.rows == 540)
    {
        ui.out(&format!(
            "  digits MLP x{}: static {:.2}x, dynamic {:.2}x (target: both > 1: {})",
            r.rows,
            r.fp32_over_static,
            r.fp32_over_dynamic,
            verdict(r.fp32_over_static > 1.0 && r.fp32_over_dynamic > 1.0)
        ));
    }
}
