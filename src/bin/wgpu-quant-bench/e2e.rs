//! Section `e2e`: f32 in and f32 out, dynamic per-token quantization + INT8 GEMM with per-row
//! dequantization, against the FP32 GEMM.

use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
use wgpu_quant::gpu::dynamic::DynamicQuantizer;
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::gpu::matmul_f32::F32Linear;
use wgpu_quant::quant::calibrate::MinMax;
use wgpu_quant::quant::pack::words_per_row;
use wgpu_quant::reference::dynamic::{DynamicGranularity, DynamicScheme};
use wgpu_quant::{Convention, Dequant, DequantScales, Epilogue, QType, Result, Scheme};

use crate::measure::{Bench, Case, Rng, kernel_report, sqnr_db};

/// The end-to-end shapes `(m, n, k)`.
pub fn e2e_shapes(quick: bool) -> Vec<(usize, usize, usize)> {
    let mut e2e = vec![(1024, 1024, 1024)];
    if !quick {
        e2e.push((128, 4096, 4096));
    }
    e2e
}

impl Bench {
    /// End to end, f32 in and out: dynamic per-token quantization + INT8 GEMM with per-row
    /// dequantization, against the FP32 GEMM.
    pub fn end_to_end(&mut self, m: usize, n: usize, k: usize, seed: u64) -> Result<()> {
        let ctx = self.ctx.clone();
        let mut rng = Rng(seed);
        let a = rng.normals(m * k, 1.0);
        let w = rng.normals(n * k, 1.0 / (k as f32).sqrt());
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let f32_layer = F32Linear::new(&ctx, &w, n, k, None)?;
        let a_raw = upload(&ctx, "a f32", &a, wgpu::BufferUsages::STORAGE)?;
        let y_f32 = create(&ctx, "y f32", (m * n * 4) as u64, usage)?;
        let weights = QuantizedWeights::quantize(
            &ctx,
            &w,
            n,
            k,
            Convention::Onnx,
            MinMax::new(),
            &Scheme::symmetric(QType::I8),
        )?;
        let scales = weights.params().scales().to_vec();
        let epilogue = Epilogue::DequantF32(Dequant {
            scales: DequantScales::PerRowPerChannel {
                row_scales: vec![],
                channel_scales: scales,
            },
            bias: None,
            activation: wgpu_quant::Activation::None,
        });
        let mut layer = QLinear::new(
            &ctx,
            weights,
            ActivationInput::PerRow { qtype: QType::I8 },
            None,
            epilogue,
        )?;
        if self.tune {
            layer.tune_blocking(&ctx)?;
        }
        let packed = create(&ctx, "a int8", (m * words_per_row(k) * 4) as u64, usage)?;
        let rows = create(&ctx, "row params", (m * 8) as u64, usage)?;
        let y = create(&ctx, "y", (m * n * 4) as u64, usage)?;
        let dq = DynamicQuantizer::new(
            &ctx,
            DynamicScheme::SymmetricPerToken,
            DynamicGranularity::PerRow,
            m,
            k,
        )?;
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        f32_layer.encode(&ctx, &mut encoder, m, &a_raw, &y_f32)?;
        dq.encode(&ctx, &mut encoder, m, &a_raw, &packed, &rows)?;
        layer.encode(&ctx, &mut encoder, m, &packed, Some(&rows), &y)?;
        ctx.queue().submit([encoder.finish()]);
        let reference: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read_blocking(&ctx, &y_f32, (m * n * 4) as u64)?);
        let got: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read_blocking(&ctx, &y, (m * n * 4) as u64)?);
        let (ctx2, ctx3) = (ctx.clone(), ctx.clone());
        let mut cases = vec![
            Case {
                precision: "f32",
                epilogue: "none",
                weight_bytes: (n * k * 4) as f64,
                sqnr: None,
                kernel: Some(f32_layer.kernel(m).to_string()),
                record: Box::new(|e| f32_layer.encode(&ctx2, e, m, &a_raw, &y_f32)),
            },
            Case {
                precision: "int8",
                epilogue: "DynamicQuantize+DequantF32",
                weight_bytes: (n * words_per_row(k) * 4) as f64,
                sqnr: Some(sqnr_db(&reference, &got)),
                kernel: Some(kernel_report(&layer, m)),
                record: Box::new(|e| {
                    dq.encode(&ctx3, e, m, &a_raw, &packed, &rows)?;
                    layer.encode(&ctx3, e, m, &packed, Some(&rows), &y)
                }),
            },
        ];
        self.time_group("e2e", (m, n, k), &mut cases)
    }
}
