//! How a row is measured: interleaved timed runs of every configuration of a group after one
//! warm-up each, the median (and min, max) per configuration; and the shared state of a run
//! (context, timer, peaks, collected rows, progress and log lines).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wgpu_quant::Result;
use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::timer::GpuTimer;

use crate::report::{ModelRecord, PeakKindKey, Peaks, Record};

/// `SplitMix64` for reproducible data.
pub struct Rng(pub u64);

impl Rng {
    /// Uniform in [0, 1).
    pub fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Roughly normal (sum of four uniforms), scaled.
    pub fn normals(&mut self, n: usize, sigma: f32) -> Vec<f32> {
        (0..n)
            .map(|_| ((0..4).map(|_| self.next()).sum::<f32>() - 2.0) * sigma * 1.7)
            .collect()
    }
}

/// Signal-to-quantization-noise ratio of `got` against `reference`, in dB.
pub fn sqnr_db(reference: &[f32], got: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|&r| f64::from(r) * f64::from(r)).sum();
    let noise: f64 = reference
        .iter()
        .zip(got)
        .map(|(&r, &g)| (f64::from(r) - f64::from(g)).powi(2))
        .sum();
    10.0 * (signal / noise.max(f64::MIN_POSITIVE)).log10()
}

/// `(median, min, max)` of a non-empty list of times.
pub fn stats(mut times: Vec<f64>) -> (f64, f64, f64) {
    times.sort_by(f64::total_cmp);
    match (times.first(), times.last()) {
        (Some(&min), Some(&max)) => (times[times.len() / 2], min, max),
        _ => (f64::NAN, f64::NAN, f64::NAN),
    }
}

/// Equal bit for bit.
pub fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Where progress and log lines go: a progress bar on a terminal's stderr (log lines printed
/// above it), plain stderr lines otherwise, and the tables on stdout unless stdout carries
/// the JSON.
pub struct Ui {
    bar: ProgressBar,
    tables_to_stderr: bool,
}

impl Ui {
    /// A bar of `steps` steps, drawn only on a terminal and never with `--json -`.
    pub fn new(steps: u64, json_to_stdout: bool) -> Self {
        let target = if json_to_stdout {
            ProgressDrawTarget::hidden()
        } else {
            // Hidden by indicatif itself when stderr is not a terminal.
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(steps), target);
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Ui {
            bar,
            tables_to_stderr: json_to_stdout,
        }
    }

    /// A progress or log line (stderr).
    pub fn log(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Starts the step named `name`.
    pub fn start(&self, name: &str) {
        self.bar.set_message(name.to_string());
        self.log(name);
    }

    /// Ends a step.
    pub fn done(&self) {
        self.bar.inc(1);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// A line of the tables: stdout, or stderr when stdout carries the JSON.
    pub fn out(&self, line: &str) {
        if self.tables_to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// Records one run of a configuration into an encoder.
pub type Recorder<'a> = Box<dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()> + 'a>;

/// One timed configuration: a recorder and what to report.
pub struct Case<'a> {
    /// `f32` or `int8`.
    pub precision: &'static str,
    /// The epilogue's name (`none` for FP32).
    pub epilogue: &'static str,
    /// Bytes of weights the kernel streams.
    pub weight_bytes: f64,
    /// SQNR against the FP32 output.
    pub sqnr: Option<f64>,
    /// The kernel variant that ran (see `kernel_report`).
    pub kernel: Option<String>,
    /// Records one run.
    pub record: Recorder<'a>,
}

/// The state of one benchmark run.
pub struct Bench {
    /// The device.
    pub ctx: Context,
    /// Timestamps or wall time.
    pub timer: GpuTimer,
    /// Timed runs per configuration.
    pub runs: usize,
    /// The measured peaks (absent when no row needs them).
    pub peaks: Peaks,
    /// GEMM, GEMV and end-to-end rows.
    pub records: Vec<Record>,
    /// Whole-model rows.
    pub models: Vec<ModelRecord>,
    /// Progress and tables.
    pub ui: Ui,
    /// Autotune each INT8 layer before timing it (not with `--no-tune`).
    pub tune: bool,
}

/// The kernel an INT8 layer runs for `m` rows (its GEMV one up to `GEMV_MAX_ROWS`, else
/// its GEMM one) and where the choice came from (heuristic, fixed, measured).
pub fn kernel_report(layer: &wgpu_quant::gpu::gemm::QLinear, m: usize) -> String {
    let kernels = layer.kernel();
    let config = if m <= wgpu_quant::gpu::gemm::GEMV_MAX_ROWS {
        kernels.gemv
    } else {
        kernels.gemm
    };
    format!("{config} ({:?})", kernels.source).to_lowercase()
}

impl Bench {
    /// Times every case of a group interleaved and appends one row per case: GOP/s =
    /// 2·M·N·K / median, GB/s = weight bytes / median, and % of the peak that bounds the row
    /// (the read bandwidth for GEMV, the f32 fma peak for FP32, the dot4 peak for INT8).
    ///
    /// # Errors
    /// What a recorder or the timer returns.
    pub fn time_group(
        &mut self,
        op: &'static str,
        (m, n, k): (usize, usize, usize),
        cases: &mut [Case<'_>],
    ) -> Result<()> {
        let times = {
            let mut recorders: Vec<&mut Recorder<'_>> =
                cases.iter_mut().map(|c| &mut c.record).collect();
            self.interleaved(&mut recorders)?
        };
        for (case, t) in cases.iter_mut().zip(times) {
            let (median, min, max) = stats(t);
            let ops = 2.0 * m as f64 * n as f64 * k as f64;
            let gops = ops / (median * 1e-3) / 1e9;
            let gbps = case.weight_bytes / (median * 1e-3) / 1e9;
            let peak = if op == "gemv" {
                PeakKindKey::ReadBandwidth
            } else if case.precision == "f32" {
                PeakKindKey::F32Fma
            } else {
                PeakKindKey::Dot4I8
            };
            let achieved = if peak == PeakKindKey::ReadBandwidth {
                gbps
            } else {
                gops
            };
            let pct_of_peak = self.peaks.value(peak).map(|p| 100.0 * achieved / p);
            let record = Record {
                op,
                precision: case.precision,
                epilogue: case.epilogue,
                m,
                n,
                k,
                runs: self.runs,
                median_ms: median,
                min_ms: min,
                max_ms: max,
                gops,
                gbps,
                pct_of_peak,
                peak: peak.as_str(),
                kernel: case.kernel.take(),
                sqnr_db: case.sqnr,
            };
            self.ui.log(&format!(
                "  {op} {m}x{n}x{k} {} {}: {:.3} ms, {:.1} GOP/s, {:.2} GB/s weights",
                record.precision, record.epilogue, record.median_ms, record.gops, record.gbps
            ));
            self.records.push(record);
        }
        Ok(())
    }

    /// One warm-up run of each recorder, then `runs` rounds of one run each, interleaved;
    /// the times in ms, per recorder.
    ///
    /// # Errors
    /// What a recorder or the timer returns.
    pub fn interleaved(&self, recorders: &mut [&mut Recorder<'_>]) -> Result<Vec<Vec<f64>>> {
        for record in recorders.iter_mut() {
            self.timer.time(&self.ctx, &mut **record)?; // warm-up
        }
        let mut times = vec![Vec::with_capacity(self.runs); recorders.len()];
        for _ in 0..self.runs {
            for (i, record) in recorders.iter_mut().enumerate() {
                times[i].push(self.timer.time(&self.ctx, &mut **record)?);
            }
        }
        Ok(times)
    }
}
