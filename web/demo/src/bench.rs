//! The browser benchmark: FP32 vs INT8 on the page's adapter, in the native benchmark's
//! terms (median of N runs after a warm-up, FP32 and INT8 interleaved, GOP/s = 2·M·N·K / time),
//! timed with [`GpuTimer`] (timestamp queries when the device has them, else wall time around
//! submit and wait). Self-contained: it shares no code with `src/bin/`.
//!
//! - GEMM and GEMV: [`F32Linear`] against [`QLinear`] with static u8 activations and the
//!   `DequantF32` epilogue (f32 out, as FP32), weights per-channel symmetric i8.
//! - The digits MLP at 540 rows: [`F32Model`] against the static and dynamic INT8 models,
//!   f32 in and f32 out, encoded between tensors already on the GPU; and [`stages`], each
//!   INT8 model's stages timed one by one (where the time goes).
//!
//! With `tune`, each INT8 shape is autotuned on the page's adapter ([`tune::autotune`],
//! awaited) before its layer is built, so the timed layer runs the measured winners; every
//! row names the INT8 kernel that ran ([`crate::kernels`]).

use wgpu_quant::gpu::buffers::{create, upload};
use wgpu_quant::gpu::dynamic::DynamicQuantizer;
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::gpu::matmul_f32::F32Linear;
use wgpu_quant::gpu::quantize::Quantizer;
use wgpu_quant::gpu::timer::GpuTimer;
use wgpu_quant::gpu::tune;
use wgpu_quant::nn::Quantization;
use wgpu_quant::prelude::*;
use wgpu_quant::quant::pack::pack_bytes;
use wgpu_quant::reference::quantize::quantize;
use wgpu_quant::{Dequant, Epilogue};

use crate::digits::{Demo, PIXELS, Which};

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// `gemm`, `gemv` or `model`.
    pub op: &'static str,
    /// What was run (`256×256×256`, `digits MLP ×540 (static)`).
    pub shape: String,
    /// Multiply-adds × 2 per run.
    pub ops: f64,
    /// FP32 median, ms.
    pub fp32_ms: f64,
    /// INT8 median, ms.
    pub int8_ms: f64,
    /// The INT8 kernel that ran and where the choice came from ([`crate::kernels::ran`]).
    pub int8_kernel: String,
}

impl Row {
    /// FP32 time over INT8 time (above 1: INT8 is faster).
    pub fn ratio(&self) -> f64 {
        self.fp32_ms / self.int8_ms
    }

    /// FP32 GOP/s.
    pub fn fp32_gops(&self) -> f64 {
        self.ops / (self.fp32_ms * 1e-3) / 1e9
    }

    /// INT8 GOP/s.
    pub fn int8_gops(&self) -> f64 {
        self.ops / (self.int8_ms * 1e-3) / 1e9
    }
}

/// The default shapes: GEMM 256³, 512³, 1024³ and GEMV 1×4096×4096 (M×N×K).
pub const SHAPES: [(usize, usize, usize); 4] = [
    (256, 256, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
    (1, 4096, 4096),
];

/// A small deterministic generator (xorshift64*), uniform in [-1, 1).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40; // 24 bits
                (bits as f32 / (1u32 << 23) as f32 - 1.0) * scale
            })
            .collect()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A recorder of one timed run.
type Recorder<'a> = Box<dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()> + 'a>;

/// One warm-up run of each recorder, then `runs` rounds of one run each, interleaved; the
/// median of each, ms.
async fn interleaved(
    ctx: &Context,
    timer: &GpuTimer,
    runs: usize,
    recorders: &mut [Recorder<'_>],
) -> Result<Vec<f64>> {
    for record in recorders.iter_mut() {
        timer.time_async(ctx, &mut **record).await?;
    }
    let mut times = vec![Vec::with_capacity(runs); recorders.len()];
    for _ in 0..runs {
        for (i, record) in recorders.iter_mut().enumerate() {
            times[i].push(timer.time_async(ctx, &mut **record).await?);
        }
    }
    Ok(times.into_iter().map(median).collect())
}

/// FP32 vs INT8 at one shape (GEMM, or GEMV when `m == 1`). With `tune`, the autotune
/// measures the shape's classes first (those not measured yet on `ctx`), so the INT8 layer,
/// built afterwards, takes the winners.
///
/// # Errors
/// GPU, quantization and allocation errors.
pub async fn linear(
    ctx: &Context,
    timer: &GpuTimer,
    runs: usize,
    tune: bool,
    (m, n, k): (usize, usize, usize),
) -> Result<Row> {
    if tune {
        tune::autotune(ctx, n, k).await?;
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (m * 31 + n * 7 + k) as u64);
    let a = rng.uniform(m * k, 1.0);
    let w = rng.uniform(n * k, 1.0 / (k as f32).sqrt());
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;

    let f32_layer = F32Linear::new(ctx, &w, n, k, None)?;
    let a_f32 = upload(ctx, "a f32", &a, wgpu::BufferUsages::STORAGE)?;
    let y_f32 = create(ctx, "y f32", (m * n * 4) as u64, usage)?;

    let conv = Convention::Onnx;
    let mut obs = Observer::per_tensor(MinMax::new());
    obs.observe(&a, &[m, k])?;
    let a_params = obs.params(conv, &Scheme::affine(QType::U8))?;
    let a_q = quantize(conv, &a, &[m, k], &a_params)?;
    let a_int8 = upload(
        ctx,
        "a int8",
        &pack_bytes(&a_q, m, k)?,
        wgpu::BufferUsages::STORAGE,
    )?;
    let weights = QuantizedWeights::quantize(
        ctx,
        &w,
        n,
        k,
        conv,
        MinMax::new(),
        &Scheme::symmetric(QType::I8),
    )?;
    let dequant = Dequant::per_channel(&a_params, weights.params(), None)?;
    let input = ActivationInput::Static {
        qtype: QType::U8,
        zero_point: a_params.zero_point(0),
    };
    let int8_layer = QLinear::new(ctx, weights, input, None, Epilogue::DequantF32(dequant))?;
    let y_int8 = create(ctx, "y int8 dequant", (m * n * 4) as u64, usage)?;

    let mut recorders: Vec<Recorder<'_>> = vec![
        Box::new(|e| f32_layer.encode(ctx, e, m, &a_f32, &y_f32)),
        Box::new(|e| int8_layer.encode(ctx, e, m, &a_int8, None, &y_int8)),
    ];
    let t = interleaved(ctx, timer, runs, &mut recorders).await?;
    Ok(Row {
        op: if m == 1 { "gemv" } else { "gemm" },
        shape: format!("{m}×{n}×{k}"),
        ops: 2.0 * (m * n * k) as f64,
        fp32_ms: t[0],
        int8_ms: t[1],
        int8_kernel: crate::kernels::ran(&int8_layer.kernel(), m),
    })
}

/// The digits MLP on the whole test split: FP32 against static and dynamic INT8 (two rows),
/// each encoded from one input tensor to its own output tensor.
///
/// # Errors
/// GPU errors.
pub async fn model(demo: &mut Demo, timer: &GpuTimer, runs: usize) -> Result<Vec<Row>> {
    let ctx = demo.context().clone();
    let rows = demo.test_rows();
    let x: Vec<f32> = (0..rows)
        .flat_map(|i| {
            demo.test_image(i)
                .map(|(p, _)| p.to_vec())
                .unwrap_or_default()
        })
        .collect();
    let input = Tensor::from_f32(&ctx, &x, rows, PIXELS)?;
    let (fp32, st, dy) = demo.models_mut();
    let mut y_fp32 = Tensor::new(&ctx, TensorSpec::f32(crate::digits::CLASSES), rows)?;
    let mut y_static = Tensor::new(&ctx, st.output_spec(), rows)?;
    let mut y_dynamic = Tensor::new(&ctx, dy.output_spec(), rows)?;
    let (input, c) = (&input, &ctx);
    let mut recorders: Vec<Recorder<'_>> = vec![
        Box::new(|e| fp32.encode(c, e, input, &mut y_fp32)),
        Box::new(|e| st.encode(c, e, input, &mut y_static)),
        Box::new(|e| dy.encode(c, e, input, &mut y_dynamic)),
    ];
    let t = interleaved(&ctx, timer, runs, &mut recorders).await?;
    drop(recorders);
    let kernels = [Which::Static, Which::Dynamic].map(|which| {
        demo.quantized(which)
            .map(|m| crate::kernels::model(m, rows))
            .unwrap_or_default()
    });
    // 64·128 + 128·64 + 64·10 multiply-adds per row.
    let ops = 2.0 * (rows * (64 * 128 + 128 * 64 + 64 * 10)) as f64;
    Ok([Which::Static, Which::Dynamic]
        .into_iter()
        .zip([t[1], t[2]])
        .zip(kernels)
        .map(|((which, int8_ms), int8_kernel)| Row {
            op: "model",
            shape: format!("digits MLP ×{rows} ({})", which.name()),
            ops,
            fp32_ms: t[0],
            int8_ms,
            int8_kernel,
        })
        .collect())
}

/// One stage of an INT8 model timed on its own.
#[derive(Debug, Clone)]
pub struct StageTime {
    /// `INT8 static` or `INT8 dynamic`.
    pub model: &'static str,
    /// The stage in words (`quantize 540×64`, `linear 540×128×64 → f32`).
    pub stage: String,
    /// Median GPU time of the stage alone, ms.
    pub ms: f64,
}

/// An INT8 model's stage, run on its own: the model's own linear layers, and quantizers
/// built like the model's (same params or scheme, same capacity, so the same kernel).
enum StageOp<'a> {
    Quantize(Quantizer),
    Dynamic(DynamicQuantizer),
    Linear(&'a wgpu_quant::nn::Linear),
}

/// Each INT8 model's stages on the whole test split, timed one by one (median of `runs`
/// after a warm-up, each stage in its own submission, reading the previous stage's output):
/// where the model's time goes. The whole model in one submission is [`model`]'s row.
///
/// # Errors
/// GPU errors; [`Error::Mismatch`] for a stage this breakdown does not know.
pub async fn stages(demo: &Demo, timer: &GpuTimer, runs: usize) -> Result<Vec<StageTime>> {
    let ctx = demo.context().clone();
    let rows = demo.test_rows();
    let x: Vec<f32> = (0..rows)
        .flat_map(|i| {
            demo.test_image(i)
                .map(|(p, _)| p.to_vec())
                .unwrap_or_default()
        })
        .collect();
    let mut out = Vec::new();
    // The static model's input quantizer (convention, params, columns) and the dynamic
    // model's first quantizer (scheme, granularity, columns), for the comparison.
    let mut first_quantize = None;
    let mut first_dynamic = None;
    for which in [Which::Static, Which::Dynamic] {
        let Some(model) = demo.quantized(which) else {
            continue;
        };
        let mut tensors = vec![Tensor::from_f32(&ctx, &x, rows, PIXELS)?];
        let mut ops = Vec::new();
        for stage in model.stages() {
            let (cols, spec) = (stage.input_spec().cols, stage.output_spec());
            let (op, name) = match (stage.as_linear(), &spec.quantization) {
                (Some(l), _) => (
                    StageOp::Linear(l),
                    format!(
                        "linear {rows}×{}×{} → {} ({})",
                        l.n(),
                        l.k(),
                        spec.element.name(),
                        crate::kernels::ran(&l.kernel(), rows)
                    ),
                ),
                (None, Some(Quantization::Static(params))) => {
                    let convention = stage.convention().unwrap_or(Convention::Onnx);
                    first_quantize.get_or_insert((convention, params.clone(), cols));
                    (
                        StageOp::Quantize(Quantizer::new(&ctx, convention, params, rows, cols)?),
                        format!(
                            "quantize {rows}×{cols} → {} ({convention:?} rule)",
                            spec.element.name()
                        ),
                    )
                }
                (
                    None,
                    Some(Quantization::Dynamic {
                        scheme,
                        granularity,
                    }),
                ) => {
                    first_dynamic.get_or_insert((*scheme, *granularity, cols));
                    let q = DynamicQuantizer::new(&ctx, *scheme, *granularity, rows, cols)?;
                    let wg = q
                        .row_workgroup()
                        .map_or(String::new(), |w| format!(", workgroup {w}"));
                    (
                        StageOp::Dynamic(q),
                        format!(
                            "dynamic quantize {rows}×{cols} → {} ({granularity:?}{wg})",
                            spec.element.name()
                        ),
                    )
                }
                (None, None) => {
                    return Err(Error::Mismatch(format!(
                        "stage {} of {}: an f32 output without a linear layer",
                        stage.kind(),
                        which.name()
                    )));
                }
            };
            tensors.push(Tensor::new(&ctx, spec, rows)?);
            ops.push((op, name));
        }
        for (i, (op, name)) in ops.iter().enumerate() {
            let (before, after) = tensors.split_at_mut(i + 1);
            let (src, dst) = (&before[i], &mut after[0]);
            let c = &ctx;
            let mut record = |e: &mut wgpu::CommandEncoder| -> Result<()> {
                match op {
                    StageOp::Linear(l) => l.encode(c, e, src, dst),
                    StageOp::Quantize(q) => {
                        q.encode(c, e, rows, src.buffer(), dst.buffer())?;
                        dst.set_rows(rows)
                    }
                    StageOp::Dynamic(q) => {
                        let params = dst.row_params().ok_or_else(|| {
                            Error::Mismatch("a dynamic tensor without row params".into())
                        })?;
                        q.encode(c, e, rows, src.buffer(), dst.buffer(), params)?;
                        dst.set_rows(rows)
                    }
                }
            };
            out.push(StageTime {
                model: which.name(),
                stage: name.clone(),
                ms: timed(c, timer, runs, &mut record).await?,
            });
        }
    }
    // The static model's input quantizer again, by the PyTorch rule (× f32(1/s) instead of
    // the correctly rounded x / s, which WGSL has no instruction for), and by its own rule
    // on twice the columns: what the quantize stages' time is made of.
    if let Some((convention, params, cols)) = first_quantize {
        let input = Tensor::from_f32(&ctx, &x, rows, PIXELS)?;
        let wide: Vec<f32> = x.iter().flat_map(|&v| [v, -v]).collect();
        let wide = Tensor::from_f32(&ctx, &wide, rows, 2 * cols)?;
        let out_narrow = Tensor::new(&ctx, TensorSpec::quantized(cols, params.clone()), rows)?;
        let out_wide = Tensor::new(&ctx, TensorSpec::quantized(2 * cols, params.clone()), rows)?;
        let cases = [
            (Convention::PyTorch, cols, &input, &out_narrow),
            (convention, 2 * cols, &wide, &out_wide),
        ];
        for (rule, width, src, dst) in cases {
            let q = Quantizer::new(&ctx, rule, &params, rows, width)?;
            let c = &ctx;
            let mut record = |e: &mut wgpu::CommandEncoder| -> Result<()> {
                q.encode(c, e, rows, src.buffer(), dst.buffer())
            };
            out.push(StageTime {
                model: COMPARISON,
                stage: format!("quantize {rows}×{width} ({rule:?} rule), same params"),
                ms: timed(c, timer, runs, &mut record).await?,
            });
        }
    }
    // The dynamic model's first quantizer with the per-row kernel's other workgroup sizes,
    // and per tensor (three passes, no workgroup barrier).
    if let Some((scheme, granularity, cols)) = first_dynamic {
        let input = Tensor::from_f32(&ctx, &x, rows, PIXELS)?;
        let dst = Tensor::new(&ctx, TensorSpec::dynamic(cols, scheme, granularity), rows)?;
        let params = dst
            .row_params()
            .ok_or_else(|| Error::Mismatch("a dynamic tensor without row params".into()))?;
        let model_q = DynamicQuantizer::new(&ctx, scheme, granularity, rows, cols)?;
        let mut variants = Vec::new();
        for &wg in wgpu_quant::gpu::dynamic::ROW_WORKGROUPS.iter() {
            if model_q.row_workgroup().is_some_and(|w| w != wg) {
                variants.push((
                    model_q.clone().with_row_workgroup(&ctx, wg)?,
                    format!("{granularity:?}, workgroup {wg}"),
                ));
            }
        }
        if granularity != DynamicGranularity::PerTensor {
            variants.push((
                DynamicQuantizer::new(&ctx, scheme, DynamicGranularity::PerTensor, rows, cols)?,
                "PerTensor: 3 passes, no workgroup barrier".into(),
            ));
        }
        for (q, what) in variants {
            let c = &ctx;
            let mut record = |e: &mut wgpu::CommandEncoder| -> Result<()> {
                q.encode(c, e, rows, input.buffer(), dst.buffer(), params)
            };
            out.push(StageTime {
                model: COMPARISON,
                stage: format!("dynamic quantize {rows}×{cols} ({what})"),
                ms: timed(c, timer, runs, &mut record).await?,
            });
        }
    }
    Ok(out)
}

/// The model name of [`stages`]' comparison rows (no model runs them).
pub const COMPARISON: &str = "comparison";

/// The median of `runs` timed runs of `record` after one warm-up, ms.
async fn timed(
    ctx: &Context,
    timer: &GpuTimer,
    runs: usize,
    record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<f64> {
    let mut times = Vec::with_capacity(runs);
    for run in 0..=runs {
        let ms = timer.time_async(ctx, record).await?;
        if run > 0 {
            times.push(ms); // the first run is the warm-up
        }
    }
    Ok(median(times))
}

/// The stage breakdown in Markdown, with each model's sum and the whole model's time in
/// one submission (`whole`: the model rows of the main table, by model name).
pub fn stages_markdown(stages: &[StageTime], whole: &[(&str, f64)]) -> String {
    let mut s =
        String::from("| model | stage | GPU ms | share of the stages |\n|---|---|---|---|\n");
    let mut models: Vec<&str> = stages.iter().map(|t| t.model).collect();
    models.dedup();
    for model in models {
        let sum: f64 = stages
            .iter()
            .filter(|t| t.model == model)
            .map(|t| t.ms)
            .sum();
        for t in stages.iter().filter(|t| t.model == model) {
            s.push_str(&format!(
                "| {} | {} | {:.3} | {} |\n",
                t.model,
                t.stage,
                t.ms,
                if model == COMPARISON {
                    "–".to_string()
                } else {
                    format!("{:.0} %", 100.0 * t.ms / sum)
                }
            ));
        }
        if model == COMPARISON {
            continue;
        }
        s.push_str(&format!("| {model} | sum of the stages | {sum:.3} | |\n"));
        if let Some((_, ms)) = whole.iter().find(|(m, _)| *m == model) {
            s.push_str(&format!(
                "| {model} | the whole model, one submission | {ms:.3} | |\n"
            ));
        }
    }
    s
}

/// The table in Markdown, with the native benchmark's columns.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| op | shape (M×N×K) | FP32 ms | INT8 ms | FP32 / INT8 | FP32 GOP/s | INT8 GOP/s | INT8 kernel |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:.2}× | {:.1} | {:.1} | {} |\n",
            r.op,
            r.shape,
            r.fp32_ms,
            r.int8_ms,
            r.ratio(),
            r.fp32_gops(),
            r.int8_gops(),
            r.int8_kernel
        ));
    }
    s
}
