//! GPU dynamic quantization equals the reference (bytes, scales and zero points), and the
//! all-GPU chain dynamic quantize → int8 GEMM → f32 equals the reference chain.

use wgpu_quant::gpu::dynamic::{dynamic_quantize_blocking, dynamic_quantize_buffers_blocking};
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::reference::dynamic::{DynamicGranularity, DynamicScheme, dynamic_quantize};
use wgpu_quant::reference::gemm::{GemmInputs, QMatrix, matmul_i8};
use wgpu_quant::{Dequant, DequantScales, Epilogue, QType, QuantParams};

use crate::common::{Rng, gpu};

fn schemes() -> [DynamicScheme; 3] {
    [
        DynamicScheme::OnnxLinear { qtype: QType::U8 },
        DynamicScheme::OnnxLinear { qtype: QType::I8 },
        DynamicScheme::SymmetricPerToken,
    ]
}

fn cases(rng: &mut Rng) -> Vec<(usize, usize, Vec<f32>)> {
    let mut out = Vec::new();
    let (rows, cols) = (9, 37);
    let mut x: Vec<f32> = (0..rows * cols).map(|_| rng.uniform(-3.0, 5.0)).collect();
    x[0..cols].fill(0.0); // an all-zero row
    x[cols..2 * cols].iter_mut().for_each(|v| *v = -v.abs()); // all negative
    x[2 * cols..3 * cols].iter_mut().for_each(|v| *v = v.abs()); // all positive
    x[3 * cols] = f32::NAN;
    x[3 * cols + 1] = f32::INFINITY;
    x[3 * cols + 2] = f32::NEG_INFINITY;
    x[4 * cols..5 * cols].iter_mut().for_each(|v| *v *= 1e-39); // subnormal row
    x[5 * cols] = -0.0;
    x[6 * cols..7 * cols].iter_mut().for_each(|v| *v *= 1e30); // huge
    out.push((rows, cols, x));
    out.push((1, 1, vec![-0.0]));
    out.push((
        3,
        4096,
        (0..3 * 4096).map(|_| rng.uniform(-1.0, 1.0)).collect(),
    ));
    out.push((
        5,
        3,
        (0..15).map(|_| f32::from_bits(rng.next_u32())).collect(),
    ));
    out
}

#[test]
fn dynamic_quantize_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(50);
    for (rows, cols, x) in cases(&mut rng) {
        for scheme in schemes() {
            for granularity in [DynamicGranularity::PerRow, DynamicGranularity::PerTensor] {
                let want = dynamic_quantize(&x, rows, cols, scheme, granularity).unwrap();
                let got =
                    dynamic_quantize_blocking(ctx, &x, rows, cols, scheme, granularity).unwrap();
                let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got.scales),
                    bits(&want.scales),
                    "{scheme:?} {granularity:?} {rows}x{cols} scales"
                );
                assert_eq!(
                    got.zero_points, want.zero_points,
                    "{scheme:?} {granularity:?} {rows}x{cols}"
                );
                assert_eq!(
                    got.bytes, want.bytes,
                    "{scheme:?} {granularity:?} {rows}x{cols} bytes"
                );
            }
        }
    }
}

/// f32 activations → GPU dynamic per-token quantization → GPU int8 GEMM with per-row
/// dequantization, with the row params never leaving the GPU; equal to the reference chain.
#[test]
fn dynamic_quantize_feeds_the_gemm_on_the_gpu() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(51);
    let (m, n, k) = (13, 21, 67);
    let x: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
    let w = rng.bytes(n * k);
    let w_scales: Vec<f32> = (0..n).map(|_| rng.uniform(0.001, 0.01)).collect();
    let w_params =
        QuantParams::per_axis(0, w_scales.clone(), vec![0; n], QType::I8.full_range()).unwrap();
    for scheme in schemes() {
        let q = dynamic_quantize(&x, m, k, scheme, DynamicGranularity::PerRow).unwrap();
        let epilogue = Epilogue::DequantF32(Dequant {
            scales: DequantScales::PerRowPerChannel {
                row_scales: q.scales.clone(),
                channel_scales: w_scales.clone(),
            },
            bias: None,
            activation: wgpu_quant::Activation::None,
        });
        let inputs = GemmInputs {
            a: QMatrix {
                data: &q.bytes,
                qtype: q.qtype,
                rows: m,
                cols: k,
            },
            a_zero_points: &q.zero_points,
            w: QMatrix {
                data: &w,
                qtype: QType::I8,
                rows: n,
                cols: k,
            },
            w_zero_points: &[0],
            bias: &[],
        };
        let want = matmul_i8(&inputs, &epilogue).unwrap();

        // All on the GPU: one encoder, activations and row params stay in GPU buffers.
        let weights = QuantizedWeights::from_quantized(ctx, &w, n, k, w_params.clone()).unwrap();
        let layer = QLinear::new(
            ctx,
            weights,
            ActivationInput::PerRow { qtype: q.qtype },
            None,
            epilogue,
        )
        .unwrap();
        let (_, rows_gpu) =
            dynamic_quantize_buffers_blocking(ctx, &x, m, k, scheme, DynamicGranularity::PerRow)
                .unwrap();
        let input =
            wgpu_quant::gpu::buffers::upload(ctx, "x", &x, wgpu::BufferUsages::STORAGE).unwrap();
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let packed =
            wgpu_quant::gpu::buffers::create(ctx, "q", (m * k.div_ceil(4) * 4) as u64, usage)
                .unwrap();
        let row_params =
            wgpu_quant::gpu::buffers::create(ctx, "rows", (m * 8) as u64, usage).unwrap();
        let out = wgpu_quant::gpu::buffers::create(ctx, "y", (m * n * 4) as u64, usage).unwrap();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        wgpu_quant::gpu::dynamic::encode_dynamic_quantize(
            ctx,
            &mut encoder,
            scheme,
            DynamicGranularity::PerRow,
            m,
            k,
            &input,
            &packed,
            &row_params,
        )
        .unwrap();
        layer
            .encode(ctx, &mut encoder, m, &packed, Some(&row_params), &out)
            .unwrap();
        ctx.queue().submit([encoder.finish()]);
        let y: Vec<f32> = bytemuck::pod_collect_to_vec(
            &wgpu_quant::gpu::buffers::read_blocking(ctx, &out, (m * n * 4) as u64).unwrap(),
        );
        let wgpu_quant::reference::gemm::GemmOutput::F32(want) = want else {
            panic!()
        };
        assert_eq!(
            rows_gpu
                .iter()
                .map(|r| r.scale.to_bits())
                .collect::<Vec<_>>(),
            q.scales.iter().map(|s| s.to_bits()).collect::<Vec<_>>()
        );
        assert!(
            y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{scheme:?}"
        );
    }
}
