//! Dynamic quantization in the browser equals the reference (bytes, scale bits and zero
//! points), and the chain dynamic quantize → int8 GEMM stays on the GPU and equals the
//! reference chain (the native `tests/gpu_dynamic.rs`).

use wasm_bindgen_test::wasm_bindgen_test;
use wgpu_quant::gpu::dynamic::{DynamicQuantizer, ROW_WORKGROUPS, dynamic_quantize_buffers};
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::reference::dynamic::{
    DynamicGranularity, DynamicQuantized, DynamicScheme, dynamic_quantize,
};
use wgpu_quant::reference::gemm::{GemmInputs, GemmOutput, QMatrix, matmul_i8};
use wgpu_quant::{Dequant, DequantScales, Epilogue, QType, QuantParams};

use crate::common::{Rng, Test, count};

fn schemes() -> [DynamicScheme; 3] {
    [
        DynamicScheme::OnnxLinear { qtype: QType::U8 },
        DynamicScheme::OnnxLinear { qtype: QType::I8 },
        DynamicScheme::SymmetricPerToken,
    ]
}

/// The native suite's cases: special rows (all zero, all negative, NaN/±Inf, subnormal,
/// huge, exact ties, f32::MAX widths), wide rows, and random shapes with random bit patterns.
fn cases(rng: &mut Rng) -> Vec<(usize, usize, Vec<f32>)> {
    let mut out = Vec::new();
    let (rows, cols) = (9, 37);
    let mut x: Vec<f32> = (0..rows * cols).map(|_| rng.uniform(-3.0, 5.0)).collect();
    x[0..cols].fill(0.0);
    x[cols..2 * cols].iter_mut().for_each(|v| *v = -v.abs());
    x[2 * cols..3 * cols].iter_mut().for_each(|v| *v = v.abs());
    x[3 * cols] = f32::NAN;
    x[3 * cols + 1] = f32::INFINITY;
    x[3 * cols + 2] = f32::NEG_INFINITY;
    x[4 * cols..5 * cols].iter_mut().for_each(|v| *v *= 1e-39);
    x[5 * cols] = -0.0;
    x[6 * cols..7 * cols].iter_mut().for_each(|v| *v *= 1e30);
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
    let ties = |top: f32| {
        let mut row = vec![top, -top, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5];
        row.extend((0..22).map(|i| i as f32 - 10.5));
        row
    };
    let mut x = ties(127.0);
    x.extend(ties(127.5));
    x.extend([f32::MAX, -f32::MAX, 1.0, -1.0].repeat(8));
    x.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN].repeat(8));
    x.extend([-0.0f32; 32]);
    x.extend((0..32).map(|i| f32::from_bits(i + 1)));
    out.push((6, 32, x));
    for _ in 0..6 {
        let rows = rng.int(1, 40) as usize;
        let cols = rng.int(1, 300) as usize;
        let x = (0..rows * cols)
            .map(|_| {
                if rng.int(0, 9) == 0 {
                    f32::from_bits(rng.next_u32())
                } else {
                    rng.uniform(-8.0, 3.0)
                }
            })
            .collect();
        out.push((rows, cols, x));
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|s| s.to_bits()).collect()
}

/// Bytes, scale bits and zero points are equal; counts every element compared.
fn assert_same(got: &DynamicQuantized, want: &DynamicQuantized, what: &str) {
    assert_eq!(got.qtype, want.qtype, "{what}");
    assert_eq!(got.bytes.len(), want.bytes.len(), "{what}: byte count");
    assert_eq!(got.scales.len(), want.scales.len(), "{what}: scale count");
    if let Some(i) = (0..want.scales.len()).find(|&i| bits(&got.scales)[i] != bits(&want.scales)[i])
    {
        panic!(
            "{what}: scales differ first at group {i}: gpu {:e} ({:#010x}) cpu {:e} ({:#010x})",
            got.scales[i],
            got.scales[i].to_bits(),
            want.scales[i],
            want.scales[i].to_bits()
        );
    }
    assert_eq!(got.zero_points, want.zero_points, "{what}: zero points");
    if let Some(i) = (0..want.bytes.len()).find(|&i| got.bytes[i] != want.bytes[i]) {
        panic!(
            "{what}: bytes differ first at {i}: gpu {} cpu {}",
            got.bytes[i], want.bytes[i]
        );
    }
    count(want.bytes.len() + 2 * want.scales.len());
}

/// Every case x scheme x granularity, through one quantizer per capacity serving several
/// batch sizes, and every per-row workgroup size.
#[wasm_bindgen_test]
async fn dynamic_quantize_matches_reference() {
    let t = Test::start("dynamic::dynamic_quantize_matches_reference").await;
    let ctx = &t.ctx;
    let mut rng = Rng::new(50);
    for (max_rows, cols, x) in cases(&mut rng) {
        for scheme in schemes() {
            let per_tensor =
                DynamicQuantizer::new(ctx, scheme, DynamicGranularity::PerTensor, max_rows, cols)
                    .unwrap();
            let per_row =
                DynamicQuantizer::new(ctx, scheme, DynamicGranularity::PerRow, max_rows, cols)
                    .unwrap();
            let quantizers = ROW_WORKGROUPS
                .iter()
                .map(|&wg| per_row.clone().with_row_workgroup(ctx, wg).unwrap())
                .chain([per_tensor]);
            for q in quantizers {
                let granularity = q.granularity();
                for rows in [max_rows, max_rows.div_ceil(2)] {
                    let x = &x[..rows * cols];
                    let want = dynamic_quantize(x, rows, cols, scheme, granularity).unwrap();
                    let got = q.run(ctx, x, rows).await.unwrap();
                    let what = format!(
                        "{scheme:?} {granularity:?} wg {:?} {rows} of {max_rows}x{cols}",
                        q.row_workgroup()
                    );
                    assert_same(&got, &want, &what);
                }
            }
        }
    }
    t.done();
}

/// f32 activations → dynamic per-row quantization → int8 GEMM with per-row dequantization,
/// the row params never leaving the GPU; equal to the reference chain.
#[wasm_bindgen_test]
async fn dynamic_quantize_feeds_the_gemm_on_the_gpu() {
    use wgpu_quant::gpu::buffers::{create, read, upload};
    let t = Test::start("dynamic::dynamic_quantize_feeds_the_gemm_on_the_gpu").await;
    let ctx = &t.ctx;
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
        let GemmOutput::F32(want) = matmul_i8(&inputs, &epilogue).unwrap() else {
            unreachable!()
        };
        let weights = QuantizedWeights::from_quantized(ctx, &w, n, k, w_params.clone()).unwrap();
        let input_kind = ActivationInput::PerRow { qtype: q.qtype };
        let layer = QLinear::new(ctx, weights, input_kind, None, epilogue).unwrap();
        let (bytes, rows_gpu) =
            dynamic_quantize_buffers(ctx, &x, m, k, scheme, DynamicGranularity::PerRow)
                .await
                .unwrap();
        assert_eq!(bytes, q.bytes, "{scheme:?}: quantized bytes");
        let scale_bits: Vec<u32> = rows_gpu.iter().map(|r| r.scale.to_bits()).collect();
        assert_eq!(scale_bits, bits(&q.scales), "{scheme:?}: row scales");
        count(bytes.len() + scale_bits.len());

        let input = upload(ctx, "x", &x, wgpu::BufferUsages::STORAGE).unwrap();
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let packed = create(ctx, "q", (m * k.div_ceil(4) * 4) as u64, usage).unwrap();
        let row_params = create(ctx, "rows", (m * 8) as u64, usage).unwrap();
        let out = create(ctx, "y", (m * n * 4) as u64, usage).unwrap();
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
        let y: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read(ctx, &out, (m * n * 4) as u64).await.unwrap());
        assert_eq!(bits(&y), bits(&want), "{scheme:?}: chained GEMM output");
        count(want.len());
    }
    t.done();
}
