//! Sections `gemm` and `gemv`: FP32 vs INT8 with static activations at one shape, the INT8
//! layer with each epilogue (I32, DequantF32, RequantFixedPoint; GEMV, M = 1, with the first
//! two), and the SQNR of every INT8 output against the FP32 output on the same data.

use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::gpu::matmul_f32::F32Linear;
use wgpu_quant::quant::calibrate::{MinMax, Observer};
use wgpu_quant::quant::pack::{pack_bytes, unpack_bytes, words_per_row};
use wgpu_quant::reference::quantize::{dequantize, quantize};
use wgpu_quant::{
    Convention, Dequant, Epilogue, FixedPointRounding, QType, Requant, Result, Scheme,
};

use crate::measure::{Bench, Case, Rng, kernel_report, sqnr_db};

/// The GEMM shapes `(m, n, k)`.
pub fn gemm_shapes(quick: bool) -> Vec<(usize, usize, usize)> {
    let mut gemm = vec![
        (256, 256, 256),
        (512, 512, 512),
        (1024, 1024, 1024),
        (128, 4096, 4096),
    ];
    if !quick {
        gemm.extend([(2048, 2048, 2048), (128, 11008, 4096), (128, 4096, 11008)]);
    }
    gemm
}

/// The GEMV shapes `(n, k)`.
pub fn gemv_shapes(quick: bool) -> Vec<(usize, usize)> {
    let mut gemv = vec![(1024, 1024), (4096, 4096)];
    if !quick {
        gemv.extend([(11008, 4096), (4096, 11008)]);
    }
    gemv
}

impl Bench {
    /// FP32 vs INT8 (static activations) at one shape: GEMM, or GEMV when `m == 1`.
    ///
    /// # Errors
    /// Layer construction, encoding or timing errors.
    pub fn linear(
        &mut self,
        op: &'static str,
        m: usize,
        n: usize,
        k: usize,
        seed: u64,
    ) -> Result<()> {
        let ctx = self.ctx.clone();
        let mut rng = Rng(seed);
        let a = rng.normals(m * k, 1.0);
        let w = rng.normals(n * k, 1.0 / (k as f32).sqrt());
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;

        let f32_layer = F32Linear::new(&ctx, &w, n, k, None)?;
        let a_f32 = upload(&ctx, "a f32", &a, wgpu::BufferUsages::STORAGE)?;
        let y_f32 = create(&ctx, "y f32", (m * n * 4) as u64, usage)?;
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        f32_layer.encode(&ctx, &mut encoder, m, &a_f32, &y_f32)?;
        ctx.queue().submit([encoder.finish()]);
        let reference: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read_blocking(&ctx, &y_f32, (m * n * 4) as u64)?);

        let conv = Convention::Onnx;
        let mut obs = Observer::per_tensor(MinMax::new());
        obs.observe(&a, &[m, k])?;
        let a_params = obs.params(conv, &Scheme::affine(QType::U8))?;
        let a_q = quantize(conv, &a, &[m, k], &a_params)?;
        let a_buf = upload(
            &ctx,
            "a int8",
            &pack_bytes(&a_q, m, k)?,
            wgpu::BufferUsages::STORAGE,
        )?;
        let weights = QuantizedWeights::quantize(
            &ctx,
            &w,
            n,
            k,
            conv,
            MinMax::new(),
            &Scheme::symmetric(QType::I8),
        )?;
        let w_params = weights.params().clone();
        let mut out_obs = Observer::per_tensor(MinMax::new());
        out_obs.observe(&reference, &[m, n])?;
        let out_params = out_obs.params(Convention::TfLite, &Scheme::affine(QType::U8))?;
        let input = ActivationInput::Static {
            qtype: QType::U8,
            zero_point: a_params.zero_point(0),
        };
        let s_acc: Vec<f32> = (0..n)
            .map(|c| a_params.scale(0) * w_params.scale(c))
            .collect();

        let mut i32_layer = QLinear::new(&ctx, weights.clone(), input, None, Epilogue::I32)?;
        let mut f32_out = QLinear::new(
            &ctx,
            weights.clone(),
            input,
            None,
            Epilogue::DequantF32(Dequant::per_channel(&a_params, &w_params, None)?),
        )?;
        let requant = Requant::fixed_point(
            &a_params,
            &w_params,
            &out_params,
            wgpu_quant::Activation::None,
            FixedPointRounding::Single,
        )?;
        let mut q_layer = QLinear::new(&ctx, weights, input, None, Epilogue::Requant(requant))?;
        if self.tune {
            // The first layer measures the shape class; the others take the cached winner.
            for layer in [&mut i32_layer, &mut f32_out, &mut q_layer] {
                layer.tune_blocking(&ctx)?;
            }
        }
        let y_i32 = create(&ctx, "y i32", (m * n * 4) as u64, usage)?;
        let y_deq = create(&ctx, "y dequant", (m * n * 4) as u64, usage)?;
        let y_q = create(&ctx, "y int8", (m * words_per_row(n) * 4) as u64, usage)?;

        // Accuracy, once, outside the timed runs.
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        i32_layer.encode(&ctx, &mut encoder, m, &a_buf, None, &y_i32)?;
        f32_out.encode(&ctx, &mut encoder, m, &a_buf, None, &y_deq)?;
        q_layer.encode(&ctx, &mut encoder, m, &a_buf, None, &y_q)?;
        ctx.queue().submit([encoder.finish()]);
        let acc: Vec<i32> =
            bytemuck::pod_collect_to_vec(&read_blocking(&ctx, &y_i32, (m * n * 4) as u64)?);
        let from_i32: Vec<f32> = acc
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f32 * s_acc[i % n])
            .collect();
        let deq: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read_blocking(&ctx, &y_deq, (m * n * 4) as u64)?);
        let q_words: Vec<u32> = bytemuck::pod_collect_to_vec(&read_blocking(
            &ctx,
            &y_q,
            (m * words_per_row(n) * 4) as u64,
        )?);
        let from_q = dequantize(&unpack_bytes(&q_words, m, n)?, &[m, n], &out_params)?;

        let (ctx2, ctx3, ctx4, ctx5) = (ctx.clone(), ctx.clone(), ctx.clone(), ctx.clone());
        let int8_bytes = (n * words_per_row(k) * 4) as f64;
        let mut cases = vec![
            Case {
                precision: "f32",
                epilogue: "none",
                weight_bytes: (n * k.next_multiple_of(4) * 4) as f64,
                sqnr: None,
                kernel: Some(f32_layer.kernel(m).to_string()),
                record: Box::new(|e| f32_layer.encode(&ctx2, e, m, &a_f32, &y_f32)),
            },
            Case {
                precision: "int8",
                epilogue: "I32",
                weight_bytes: int8_bytes,
                sqnr: Some(sqnr_db(&reference, &from_i32)),
                kernel: Some(kernel_report(&i32_layer, m)),
                record: Box::new(|e| i32_layer.encode(&ctx3, e, m, &a_buf, None, &y_i32)),
            },
            Case {
                precision: "int8",
                epilogue: "DequantF32",
                weight_bytes: int8_bytes,
                sqnr: Some(sqnr_db(&reference, &deq)),
                kernel: Some(kernel_report(&f32_out, m)),
                record: Box::new(|e| f32_out.encode(&ctx4, e, m, &a_buf, None, &y_deq)),
            },
            Case {
                precision: "int8",
                epilogue: "RequantFixedPoint",
                weight_bytes: int8_bytes,
                sqnr: Some(sqnr_db(&reference, &from_q)),
                kernel: Some(kernel_report(&q_layer, m)),
                record: Box::new(|e| q_layer.encode(&ctx5, e, m, &a_buf, None, &y_q)),
            },
        ];
        if m == 1 {
            cases.truncate(3); // GEMV: weights streamed once; i32 and f32 outputs
        }
        self.time_group(op, (m, n, k), &mut cases)
    }
}
