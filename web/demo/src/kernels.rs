//! Which INT8 kernels ran, and what the autotune measured: the names the pages show
//! ([`wgpu_quant::gpu::tune::KernelConfig`]'s `Display`, where the choice came from) and the
//! autotune's records ([`Context::tuning_report`]) as table rows.

use wgpu_quant::gpu::tune::{self, KernelConfig, LayerKernels, ShapeClass, TuneRecord};
use wgpu_quant::nn::QuantizedModel;
use wgpu_quant::prelude::*;

use crate::digits::LAYERS;

/// Where a choice came from, in words: `measured`, `heuristic` or `fixed`.
pub fn source(kernels: &LayerKernels) -> String {
    format!("{:?}", kernels.source).to_lowercase()
}

/// The kernel a layer runs for `m` rows: the GEMV one up to [`GEMV_MAX_ROWS`] rows, else
/// the GEMM one, and where the choice came from (`8x8 scalar dot4 (measured)`).
///
/// [`GEMV_MAX_ROWS`]: wgpu_quant::gpu::gemm::GEMV_MAX_ROWS
pub fn ran(kernels: &LayerKernels, m: usize) -> String {
    let config = if m <= wgpu_quant::gpu::gemm::GEMV_MAX_ROWS {
        kernels.gemv
    } else {
        kernels.gemm
    };
    format!("{config} ({})", source(kernels))
}

/// The kernels a model's layers run for `m` rows: one name when every layer runs the same
/// (`8x8 scalar dot4 (measured), every layer`), else one per layer (`fc1 …; fc2 …`).
pub fn model(model: &QuantizedModel, m: usize) -> String {
    let names: Vec<String> = model.layers().map(|l| ran(&l.kernel(), m)).collect();
    if names.windows(2).all(|w| w[0] == w[1]) {
        match names.first() {
            Some(name) if names.len() > 1 => format!("{name}, every layer"),
            Some(name) => name.clone(),
            None => String::new(),
        }
    } else {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{} {name}", LAYERS.get(i).copied().unwrap_or("layer")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A shape class in words: `GEMM N≤1024 K≤1024`, `GEMV N≤64 K≤128`, with
/// `, K not in whole vec4 rows` where 16-byte loads do not apply.
pub fn class_name(class: &ShapeClass) -> String {
    let pow = |log2: u32| 1u64.checked_shl(log2).unwrap_or(u64::MAX);
    format!(
        "{} N≤{} K≤{}{}",
        if class.gemv { "GEMV" } else { "GEMM" },
        pow(class.n_log2),
        pow(class.k_log2),
        if class.vec4_able {
            ""
        } else {
            ", K not in whole vec4 rows"
        }
    )
}

/// One shape class the autotune measured.
#[derive(Debug, Clone)]
pub struct TuneRow {
    /// The class in words ([`class_name`]).
    pub class: String,
    /// The shape it was timed at, `M×N×K`.
    pub shape: String,
    /// Every candidate and its best time (ms), in the order measured.
    pub candidates: Vec<(String, f64)>,
    /// The winner.
    pub winner: String,
    /// The winner's time, ms.
    pub winner_ms: f64,
    /// What the heuristic would have run (as a layer built without the autotune gets it).
    pub heuristic: String,
    /// The heuristic's time, when it was among the candidates, ms.
    pub heuristic_ms: Option<f64>,
}

impl TuneRow {
    /// The heuristic's time over the winner's (how much the autotune gained), when known.
    pub fn gain(&self) -> Option<f64> {
        self.heuristic_ms.map(|h| h / self.winner_ms)
    }
}

/// The heuristic's choice for a class, fitted as a layer's choice is: 16-byte loads only
/// where the rows allow them, the polyfill where the context forces it.
fn heuristic(ctx: &Context, class: &ShapeClass) -> KernelConfig {
    let (gemm, gemv) = tune::heuristic(ctx);
    let h = if class.gemv { gemv } else { gemm };
    KernelConfig {
        vec4_loads: h.vec4_loads && class.vec4_able,
        unpacked: h.unpacked || ctx.dot4_polyfill(),
        ..h
    }
}

/// One row per record of [`Context::tuning_report`], in the report's order.
pub fn tuning(ctx: &Context) -> Vec<TuneRow> {
    ctx.tuning_report()
        .iter()
        .map(|r: &TuneRecord| {
            let h = heuristic(ctx, &r.class);
            let (m, n, k) = r.shape;
            TuneRow {
                class: class_name(&r.class),
                shape: format!("{m}×{n}×{k}"),
                candidates: r
                    .timings
                    .iter()
                    .map(|(c, ms)| (c.to_string(), *ms))
                    .collect(),
                winner: r.winner.to_string(),
                winner_ms: r
                    .timings
                    .iter()
                    .find(|(c, _)| *c == r.winner)
                    .map_or(f64::NAN, |t| t.1),
                heuristic: h.to_string(),
                heuristic_ms: r.timings.iter().find(|(c, _)| *c == h).map(|t| t.1),
            }
        })
        .collect()
}

/// The autotune's table in Markdown: per shape class the winner, the heuristic's choice
/// and every candidate's best time, fastest first.
pub fn tuning_markdown(rows: &[TuneRow]) -> String {
    let mut s = String::from(
        "| shape class | timed at (M×N×K) | winner | winner ms | heuristic's choice | heuristic ms | heuristic / winner | candidates (best ms, fastest first) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let mut sorted = r.candidates.clone();
        sorted.sort_by(|a, b| a.1.total_cmp(&b.1));
        let candidates = sorted
            .iter()
            .map(|(c, ms)| format!("{c} {ms:.3}"))
            .collect::<Vec<_>>()
            .join(" · ");
        s.push_str(&format!(
            "| {} | {} | {} | {:.3} | {} | {} | {} | {} |\n",
            r.class,
            r.shape,
            r.winner,
            r.winner_ms,
            r.heuristic,
            r.heuristic_ms.map_or("–".into(), |ms| format!("{ms:.3}")),
            r.gain().map_or("–".into(), |g| format!("{g:.2}×")),
            candidates
        ));
    }
    s
}
