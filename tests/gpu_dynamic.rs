//! GPU dynamic quantization equals the reference (bytes, scales and zero points), and the
//! all-GPU chain dynamic quantize → int8 GEMM → f32 equals the reference chain.

use wgpu_quant::gpu::dynamic::{
    DynamicQuantizer, ROW_WORKGROUPS, dynamic_quantize_blocking, dynamic_quantize_buffers_blocking,
};
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights, RowParams};
use wgpu_quant::reference::dynamic::{
    DynamicGranularity, DynamicQuantized, DynamicScheme, dynamic_quantize,
};
use wgpu_quant::reference::gemm::{GemmInputs, QMatrix, matmul_i8};
use wgpu_quant::{Dequant, DequantScales, Epilogue, Error, QType, QuantParams};

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
    // Exact ties: absmax 127 (per-token scale 1) and a width of 255 (Onnx scale 1, zero
    // point rne(127.5) = 128), with halves in between; a width that overflows f32 (scale
    // +Inf); a row of only NaN and infinities; a row of -0.0.
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
    x.extend((0..32).map(|i| f32::from_bits(i + 1))); // subnormals only
    out.push((6, 32, x));
    // Random shapes, bit patterns mixed with normal values.
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

/// GPU and reference results are equal: lengths first, then bytes, scale bits and zero
/// points.
fn assert_same(got: &DynamicQuantized, want: &DynamicQuantized, what: &str) {
    assert_eq!(got.qtype, want.qtype, "{what}");
    assert_eq!(got.bytes.len(), want.bytes.len(), "{what} byte count");
    assert_eq!(got.scales.len(), want.scales.len(), "{what} scale count");
    assert_eq!(got.zero_points.len(), want.zero_points.len(), "{what}");
    let first_diff = |a: &[u32], b: &[u32]| (0..a.len()).find(|&i| a[i] != b[i]);
    if let Some(i) = first_diff(&bits(&got.scales), &bits(&want.scales)) {
        panic!(
            "{what} scales differ first at group {i}: gpu {:e} ({:#010x}) cpu {:e} ({:#010x})",
            got.scales[i],
            got.scales[i].to_bits(),
            want.scales[i],
            want.scales[i].to_bits()
        );
    }
    if let Some(i) = (0..got.zero_points.len()).find(|&i| got.zero_points[i] != want.zero_points[i])
    {
        panic!(
            "{what} zero points differ first at group {i}: gpu {} cpu {}",
            got.zero_points[i], want.zero_points[i]
        );
    }
    if got.bytes != want.bytes {
        let i = (0..got.bytes.len())
            .find(|&i| got.bytes[i] != want.bytes[i])
            .unwrap();
        panic!(
            "{what} bytes differ first at {i}: gpu {} cpu {}",
            got.bytes[i], want.bytes[i]
        );
    }
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
                assert_same(
                    &got,
                    &want,
                    &format!("{scheme:?} {granularity:?} {rows}x{cols}"),
                );
            }
        }
    }
}

/// One quantizer per scheme and granularity, built for a capacity, serves batch sizes below
/// and at it, in any order, each equal to the reference on that prefix of the rows.
#[test]
fn one_quantizer_serves_every_batch_size() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(52);
    for (max_rows, cols, x) in cases(&mut rng) {
        let batches = [
            max_rows,
            1,
            max_rows.div_ceil(2),
            max_rows,
            max_rows.saturating_sub(1),
        ];
        for scheme in schemes() {
            let per_tensor =
                DynamicQuantizer::new(ctx, scheme, DynamicGranularity::PerTensor, max_rows, cols)
                    .unwrap();
            assert_eq!(per_tensor.row_workgroup(), None);
            let per_row =
                DynamicQuantizer::new(ctx, scheme, DynamicGranularity::PerRow, max_rows, cols)
                    .unwrap();
            assert!(ROW_WORKGROUPS.contains(&per_row.row_workgroup().unwrap()));
            // Every per-row workgroup size, whichever the adapter would pick.
            let quantizers = ROW_WORKGROUPS
                .iter()
                .map(|&wg| per_row.clone().with_row_workgroup(ctx, wg).unwrap())
                .chain([per_tensor]);
            for q in quantizers {
                let granularity = q.granularity();
                let what = format!("{scheme:?} {granularity:?} {:?}", q.row_workgroup());
                assert_eq!((q.max_rows(), q.cols()), (max_rows, cols));
                assert_eq!(q.scheme(), scheme);
                for rows in batches {
                    let x = &x[..rows * cols];
                    let want = dynamic_quantize(x, rows, cols, scheme, granularity).unwrap();
                    let got = q.run_blocking(ctx, x, rows).unwrap();
                    assert_same(&got, &want, &format!("{what} {rows} of {max_rows}x{cols}"));
                }
            }
        }
    }
}

/// Calls with different row counts recorded into one encoder each use their own uniforms
/// and write only their own rows; every row's `RowParams` is the reference's (per tensor:
/// the tensor's params in every row).
#[test]
fn row_counts_in_one_encoder() {
    use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(53);
    let (max_rows, cols) = (9usize, 37usize);
    let x: Vec<f32> = (0..max_rows * cols)
        .map(|_| rng.uniform(-3.0, 7.0))
        .collect();
    let input = upload(ctx, "x", &x, wgpu::BufferUsages::STORAGE).unwrap();
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let wpr = cols.div_ceil(4);
    for scheme in schemes() {
        for granularity in [DynamicGranularity::PerRow, DynamicGranularity::PerTensor] {
            let q = DynamicQuantizer::new(ctx, scheme, granularity, max_rows, cols).unwrap();
            let calls = [5, max_rows, 2];
            let outs: Vec<_> = calls
                .iter()
                .map(|_| {
                    let packed = create(ctx, "q", (max_rows * wpr * 4) as u64, usage).unwrap();
                    let params = create(ctx, "p", (max_rows * 8) as u64, usage).unwrap();
                    (packed, params)
                })
                .collect();
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            assert_eq!(calls.len(), outs.len());
            for (rows, (packed, params)) in calls.iter().zip(&outs) {
                encoder.clear_buffer(packed, 0, None);
                encoder.clear_buffer(params, 0, None);
                q.encode(ctx, &mut encoder, *rows, &input, packed, params)
                    .unwrap();
            }
            ctx.queue().submit([encoder.finish()]);
            for (&rows, (packed, params)) in calls.iter().zip(&outs) {
                let what = format!("{scheme:?} {granularity:?} rows {rows}");
                let want =
                    dynamic_quantize(&x[..rows * cols], rows, cols, scheme, granularity).unwrap();
                let words: Vec<u32> = bytemuck::pod_collect_to_vec(
                    &read_blocking(ctx, packed, (max_rows * wpr * 4) as u64).unwrap(),
                );
                let bytes = wgpu_quant::quant::pack::unpack_bytes(&words, max_rows, cols).unwrap();
                assert_eq!(bytes.len(), max_rows * cols);
                assert_eq!(&bytes[..rows * cols], &want.bytes[..], "{what}");
                assert!(
                    bytes[rows * cols..].iter().all(|&b| b == 0),
                    "{what}: wrote past its rows"
                );
                let row_params: Vec<RowParams> = bytemuck::pod_collect_to_vec(
                    &read_blocking(ctx, params, (max_rows * 8) as u64).unwrap(),
                );
                assert_eq!(row_params.len(), max_rows);
                for (r, p) in row_params.iter().enumerate() {
                    if r >= rows {
                        assert_eq!((p.zero_point, p.scale.to_bits()), (0, 0), "{what} row {r}");
                        continue;
                    }
                    let g = match granularity {
                        DynamicGranularity::PerRow => r,
                        DynamicGranularity::PerTensor => 0,
                    };
                    assert_eq!(
                        (p.zero_point, p.scale.to_bits()),
                        (want.zero_points[g], want.scales[g].to_bits()),
                        "{what} row {r}"
                    );
                }
            }
        }
    }
}

/// More rows than one dispatch dimension holds: the per-row kernel's 2-D grid of
/// workgroups covers every row.
#[test]
fn per_row_beyond_one_grid_dimension() {
    let Some(ctx) = gpu() else { return };
    let limit = ctx.device().limits().max_compute_workgroups_per_dimension as usize;
    let rows = limit + 100;
    let mut rng = Rng::new(54);
    let x: Vec<f32> = (0..rows).map(|_| rng.uniform(-1.0, 1.0)).collect();
    for scheme in [
        DynamicScheme::SymmetricPerToken,
        DynamicScheme::OnnxLinear { qtype: QType::U8 },
    ] {
        let want = dynamic_quantize(&x, rows, 1, scheme, DynamicGranularity::PerRow).unwrap();
        let got = dynamic_quantize_blocking(ctx, &x, rows, 1, scheme, DynamicGranularity::PerRow)
            .unwrap();
        assert_same(&got, &want, &format!("{scheme:?} {rows}x1"));
    }
}

#[test]
fn dynamic_capacity_and_size_errors() {
    use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
    let Some(ctx) = gpu() else { return };
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    for granularity in [DynamicGranularity::PerRow, DynamicGranularity::PerTensor] {
        let scheme = DynamicScheme::SymmetricPerToken;
        let q = DynamicQuantizer::new(ctx, scheme, granularity, 3, 8).unwrap();
        let input = upload(ctx, "x", &[1.0f32; 32], wgpu::BufferUsages::STORAGE).unwrap();
        let packed = upload(ctx, "q", &[7u32; 8], usage).unwrap();
        let params = create(ctx, "p", 32, usage).unwrap();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let err = q
            .encode(ctx, &mut encoder, 4, &input, &packed, &params)
            .unwrap_err();
        assert_eq!(
            err,
            Error::CapacityExceeded {
                what: "dynamic quantize".into(),
                rows: 4,
                capacity: 3
            }
        );
        assert!(matches!(
            q.run_blocking(ctx, &[0.0; 32], 4),
            Err(Error::CapacityExceeded {
                rows: 4,
                capacity: 3,
                ..
            })
        ));
        // Zero rows: nothing recorded.
        q.encode(ctx, &mut encoder, 0, &input, &packed, &params)
            .unwrap();
        ctx.queue().submit([encoder.finish()]);
        let words: Vec<u32> =
            bytemuck::pod_collect_to_vec(&read_blocking(ctx, &packed, 32).unwrap());
        assert_eq!(words, vec![7; 8]);
        assert_eq!(q.run_blocking(ctx, &[], 0).unwrap().bytes, Vec::<u8>::new());
        // Too small a row-params buffer for the rows asked.
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        assert!(matches!(
            q.encode(
                ctx,
                &mut encoder,
                3,
                &input,
                &packed,
                &create(ctx, "p", 16, usage).unwrap()
            ),
            Err(Error::BufferTooSmall { .. })
        ));
        assert!(matches!(
            q.clone().with_row_workgroup(ctx, 48),
            Err(Error::InvalidConfig { .. })
        ));
        // Sizes at capacity that overflow are typed errors naming the values.
        let err = DynamicQuantizer::new(ctx, scheme, granularity, usize::MAX / 3, 4).unwrap_err();
        assert!(matches!(err, Error::SizeOverflow { .. }), "{err:?}");
        let err = DynamicQuantizer::new(ctx, scheme, granularity, 1 << 22, 1 << 11).unwrap_err();
        assert!(
            matches!(&err, Error::SizeOverflow { what } if what.contains("8589934592")),
            "{err:?}"
        );
        assert!(matches!(
            DynamicQuantizer::new(ctx, scheme, granularity, 2, 0),
            Err(Error::EmptyDimension { .. })
        ));
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
        assert_eq!(y.len(), want.len(), "{scheme:?}: length");
        assert!(
            y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{scheme:?}"
        );
    }
}
