//! Section `peaks`: the adapter's f32 fma, `dot4I8Packed` and streaming-read peaks, each the
//! best of several kernel shapes ([`PeakShape::candidates`]), reported with the shape that
//! won. A peak is the best the adapter reaches, so each shape counts its fastest run, not its
//! median (lavapipe's scheduling makes repeated runs bimodal).

use wgpu_quant::Result;
use wgpu_quant::gpu::peak::{PeakKernel, PeakKind, PeakShape};

use crate::measure::Bench;
use crate::report::PeakRecord;

/// Timed runs per shape (each a few ms to tens of ms).
const RUNS: usize = 10;
/// The largest buffer the read kernel streams: far past any last-level cache.
const READ_BYTES: u64 = 256 << 20;

/// A throughput kernel of `shape` sized so one dispatch takes at least `target_ms`:
/// workgroups grown from `start` (by the measured shortfall, at least doubling) until then,
/// or until the adapter's per-dimension dispatch limit. A kernel too small to fill the
/// adapter would understate its peak.
fn sized(
    bench: &Bench,
    kind: PeakKind,
    shape: PeakShape,
    start: u32,
    target_ms: f64,
) -> Result<PeakKernel> {
    let limit = bench
        .ctx
        .device()
        .limits()
        .max_compute_workgroups_per_dimension;
    let mut workgroups = start.clamp(1, limit);
    loop {
        let kernel = PeakKernel::compute(&bench.ctx, kind, shape, workgroups)?;
        let mut record = |e: &mut wgpu::CommandEncoder| {
            kernel.encode(e);
            Ok(())
        };
        bench.timer.time(&bench.ctx, &mut record)?; // warm-up (pipeline, first touch)
        let ms = bench.timer.time(&bench.ctx, &mut record)?;
        if ms >= target_ms || workgroups == limit {
            return Ok(kernel);
        }
        let factor = (1.2 * target_ms / ms.max(1e-3)).clamp(2.0, 256.0);
        workgroups = (f64::from(workgroups) * factor).min(f64::from(limit)) as u32;
    }
}

/// The fastest of [`RUNS`] timed runs of `kernel` after a warm-up, in units of 1e9 per s.
fn best(bench: &Bench, kernel: &PeakKernel) -> Result<f64> {
    let mut record = |e: &mut wgpu::CommandEncoder| {
        kernel.encode(e);
        Ok(())
    };
    bench.timer.time(&bench.ctx, &mut record)?;
    let mut fastest = f64::INFINITY;
    for _ in 0..RUNS {
        fastest = fastest.min(bench.timer.time(&bench.ctx, &mut record)?);
    }
    Ok(kernel.work() as f64 / (fastest * 1e-3) / 1e9)
}

/// Measures one peak over every candidate shape.
///
/// # Errors
/// Kernel construction or timing errors.
pub fn measure(bench: &Bench, kind: PeakKind, quick: bool) -> Result<PeakRecord> {
    let target_ms = if quick { 10.0 } else { 30.0 };
    let mut winner: Option<(f64, PeakShape, u32, u64, String)> = None;
    let mut candidates = Vec::new();
    // At least 64 Ki invocations, whatever the timing says.
    let mut invocations: u64 = 1 << 16;
    for shape in PeakShape::candidates(kind) {
        // One kernel (and, for the read kind, one large buffer) alive at a time.
        let kernel = if kind == PeakKind::ReadBandwidth {
            PeakKernel::read_bandwidth(&bench.ctx, shape, READ_BYTES)?
        } else {
            let start =
                u32::try_from(invocations / u64::from(shape.workgroup_size)).unwrap_or(u32::MAX);
            let kernel = sized(bench, kind, shape, start, target_ms)?;
            // The next shape starts from this one's size (most do similar work).
            invocations = invocations
                .max(u64::from(kernel.workgroups()) * u64::from(shape.workgroup_size) / 2);
            kernel
        };
        let value = best(bench, &kernel)?;
        let described = describe(&kernel);
        bench.ui.log(&format!(
            "  {}: {value:.1} {} ({described})",
            kind.as_str(),
            kind.unit()
        ));
        if winner.as_ref().is_none_or(|w| value > w.0) {
            winner = Some((
                value,
                shape,
                kernel.workgroups(),
                kernel.work(),
                described.clone(),
            ));
        }
        candidates.push((described, value));
    }
    let (value, shape, workgroups, work, described) =
        winner.ok_or_else(|| wgpu_quant::Error::Gpu("no peak shape ran".into()))?;
    Ok(PeakRecord {
        value,
        unit: kind.unit(),
        shape: described,
        workgroup_size: shape.workgroup_size,
        chains: shape.chains,
        steps: shape.steps,
        workgroups,
        work,
        runs: RUNS,
        candidates,
    })
}

/// The shape in words, with the dispatch size.
fn describe(kernel: &PeakKernel) -> String {
    let kind = kernel.kind();
    let size = if kind == PeakKind::ReadBandwidth {
        format!("{} MiB", kernel.work() >> 20)
    } else {
        format!(
            "{} invocations",
            u64::from(kernel.workgroups()) * u64::from(kernel.shape().workgroup_size)
        )
    };
    format!(
        "{}, {} workgroups, {size}",
        kernel.shape().describe(kind),
        kernel.workgroups()
    )
}
