//! The browser benchmark: FP32 vs INT8 on the page's adapter, in the native benchmark's
//! terms (median of N runs after a warm-up, FP32 and INT8 interleaved, GOP/s = 2·M·N·K / time),
//! timed with [`GpuTimer`] (timestamp queries when the device has them, else wall time around
//! submit and wait). Self-contained: it shares no code with `src/bin/`.
//!
//! - GEMM and GEMV: [`F32Linear`] against [`QLinear`] with static u8 activations and the
//!   `DequantF32` epilogue (f32 out, as FP32), weights per-channel symmetric i8.
//! - The digits MLP at 540 rows: [`F32Model`] against the static and dynamic INT8 models,
//!   f32 in and f32 out, encoded between tensors already on the GPU.

use wgpu_quant::gpu::buffers::{create, upload};
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::gpu::matmul_f32::F32Linear;
use wgpu_quant::gpu::timer::GpuTimer;
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

/// FP32 vs INT8 at one shape (GEMM, or GEMV when `m == 1`).
///
/// # Errors
/// GPU, quantization and allocation errors.
pub async fn linear(
    ctx: &Context,
    timer: &GpuTimer,
    runs: usize,
    (m, n, k): (usize, usize, usize),
) -> Result<Row> {
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
    // 64·128 + 128·64 + 64·10 multiply-adds per row.
    let ops = 2.0 * (rows * (64 * 128 + 128 * 64 + 64 * 10)) as f64;
    Ok([Which::Static, Which::Dynamic]
        .into_iter()
        .zip([t[1], t[2]])
        .map(|(which, int8_ms)| Row {
            op: "model",
            shape: format!("digits MLP ×{rows} ({})", which.name()),
            ops,
            fp32_ms: t[0],
            int8_ms,
        })
        .collect())
}

/// The table in Markdown, with the native benchmark's columns.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| op | shape (M×N×K) | FP32 ms | INT8 ms | FP32 / INT8 | FP32 GOP/s | INT8 GOP/s |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:.2}× | {:.1} | {:.1} |\n",
            r.op,
            r.shape,
            r.fp32_ms,
            r.int8_ms,
            r.ratio(),
            r.fp32_gops(),
            r.int8_gops()
        ));
    }
    s
}
