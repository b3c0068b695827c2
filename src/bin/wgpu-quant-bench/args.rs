//! The command line (clap derive): what runs, how often, and where the results go.

use std::path::PathBuf;

use clap::Parser;

/// FP32 vs INT8 on this machine's adapter: how fast, how accurate, and how close to the
/// adapter's measured peaks.
///
/// Sections, in order: peaks (f32 fma, dot4I8Packed, read bandwidth; each the best of
/// several kernel shapes), gemm, gemv, e2e (f32 in and out: dynamic quantization + INT8
/// GEMM), model (the digits MLP and an LLM-sized feed-forward block). Each FP32/INT8 group
/// runs interleaved after a warm-up; the median of N runs is reported.
#[derive(Debug, Clone, Parser)]
#[command(name = "wgpu-quant-bench", version, about, long_about)]
pub struct Args {
    /// Fewer shapes, fewer runs and smaller calibration: a few minutes on lavapipe.
    #[arg(long)]
    pub quick: bool,

    /// Timed runs per configuration (default: 3 with --quick, 7 otherwise).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: Option<u32>,

    /// Write the results as JSON to PATH; `-` writes them to stdout (and the tables to
    /// stderr, with no progress bar).
    #[arg(long, value_name = "PATH")]
    pub json: Option<String>,

    /// Write a chart (GOP/s against problem size, with the peaks) as SVG to PATH.
    #[arg(long, value_name = "PATH")]
    pub svg: Option<PathBuf>,

    /// Run only the rows whose name contains SUBSTR (`gemm 1024x1024x1024`, `gemv`, `e2e`,
    /// `model ffn`, `peaks`). The peaks are measured whenever a row needs them.
    #[arg(long, value_name = "SUBSTR")]
    pub filter: Option<String>,

    /// Compare with an earlier run's JSON: prints new/old time and throughput per row.
    #[arg(long, value_name = "OLD.json")]
    pub compare: Option<PathBuf>,

    /// Skip the autotune: INT8 layers run the heuristic's kernels for the adapter's device
    /// type. By default each INT8 shape class is measured first (a fraction of a second per
    /// class) and every layer runs the winner; the candidates' times are reported.
    #[arg(long)]
    pub no_tune: bool,
}

impl Args {
    /// Timed runs per configuration.
    pub fn runs(&self) -> usize {
        let runs = self.runs.unwrap_or(if self.quick { 3 } else { 7 });
        usize::try_from(runs).unwrap_or(usize::MAX)
    }

    /// JSON goes to stdout (`--json -`).
    pub fn json_to_stdout(&self) -> bool {
        self.json.as_deref() == Some("-")
    }

    /// Whether a row or section named `name` is selected by `--filter`.
    pub fn wanted(&self, name: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| name.contains(f.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_parse() {
        let a = Args::parse_from([
            "b", "--quick", "--runs", "5", "--json", "-", "--filter", "gemv",
        ]);
        assert!(a.quick && a.json_to_stdout());
        assert_eq!(a.runs(), 5);
        assert!(a.wanted("gemv 1x1024x1024") && !a.wanted("gemm 256x256x256"));
        assert!(Args::try_parse_from(["b", "--runs", "0"]).is_err());
        assert_eq!(Args::parse_from(["b"]).runs(), 7);
    }
}
