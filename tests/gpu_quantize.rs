//! GPU quantize and dequantize equal the CPU reference bit for bit: every convention, both
//! types, per tensor and per axis, NaN, ±Inf, -0, subnormals, ties and saturation.

use wgpu_quant::gpu::quantize::{dequantize_blocking, dequantize_i32_blocking, quantize_blocking};
use wgpu_quant::reference::quantize::{dequantize, dequantize_i32, quantize};
use wgpu_quant::{Convention, Error, QType, QuantParams};

use crate::common::{Rng, gpu};

fn specials() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::from_bits(0x007f_ffff),
        f32::MIN_POSITIVE,
        1e30,
        -1e30,
        0.5,
        1.5,
        2.5,
        -0.5,
        -1.5,
        -2.5,
        0.49999997,
        126.5,
        127.5,
        -128.5,
    ];
    v.extend((0..64).map(|i| (i as f32 - 32.0) * 0.25)); // exact ties for power-of-two scales
    v
}

#[test]
fn quantize_matches_reference_everywhere() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(21);
    let mut x = specials();
    x.extend((0..2000).map(|_| rng.uniform(-40.0, 40.0)));
    x.extend((0..500).map(|_| f32::from_bits(rng.next_u32())));
    let n = x.len();
    // Odd column count: rows padded to whole words.
    let cols = 7;
    let rows = n.div_ceil(cols);
    x.resize(rows * cols, 0.3);
    let shape = [rows, cols];
    let per_tensor = [
        (0.25f32, 3, QType::I8),
        (0.5, -7, QType::I8),
        (1.0, 0, QType::I8),
        (0.1, 128, QType::U8),
        (0.0371, 17, QType::U8),
        (3.0 / 17.0, 0, QType::I8),
    ];
    for convention in Convention::ALL {
        for &(s, zp, t) in &per_tensor {
            let params = QuantParams::per_tensor(s, zp, t.full_range()).unwrap();
            let want = quantize(convention, &x, &shape, &params).unwrap();
            let got = quantize_blocking(ctx, convention, &x, &shape, &params).unwrap();
            let bad: Vec<_> = (0..x.len())
                .filter(|&i| got[i] != want[i])
                .take(5)
                .map(|i| {
                    format!(
                        "x={:e} ({:#010x}) gpu={} cpu={}",
                        x[i],
                        x[i].to_bits(),
                        got[i],
                        want[i]
                    )
                })
                .collect();
            assert!(
                bad.is_empty(),
                "{convention:?} s={s} zp={zp} {t:?}: {bad:?}"
            );
        }
        // Per axis, both axes, narrow range.
        for axis in [0, 1] {
            let count = shape[axis];
            let scales: Vec<f32> = (0..count).map(|c| 0.05 + 0.013 * c as f32).collect();
            let zps: Vec<i32> = (0..count).map(|c| (c as i32 % 9) - 4).collect();
            let params =
                QuantParams::per_axis(axis, scales, zps, QType::I8.narrow_range()).unwrap();
            let want = quantize(convention, &x, &shape, &params).unwrap();
            let got = quantize_blocking(ctx, convention, &x, &shape, &params).unwrap();
            assert_eq!(got, want, "{convention:?} axis {axis}");
        }
    }
}

#[test]
fn dequantize_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(22);
    let shape = [13, 9];
    let q = rng.bytes(13 * 9);
    for t in [QType::I8, QType::U8] {
        let (lo, hi) = t.storage_range();
        let tensor = QuantParams::per_tensor(0.0173, rng.int(lo, hi), t.full_range()).unwrap();
        let axis = QuantParams::per_axis(
            1,
            (0..9).map(|c| 1e-3 * (c + 1) as f32).collect(),
            (0..9).map(|_| rng.int(lo, hi)).collect(),
            t.full_range(),
        )
        .unwrap();
        for params in [tensor, axis] {
            let want = dequantize(&q, &shape, &params).unwrap();
            let got = dequantize_blocking(ctx, &q, &shape, &params).unwrap();
            assert_eq!(got.len(), want.len(), "{t:?} {:?}: length", params.axis());
            let same = got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{t:?} {:?}", params.axis());
        }
    }
}

#[test]
fn quantize_errors_are_typed() {
    let Some(ctx) = gpu() else { return };
    let params = QuantParams::per_tensor(1.0, 0, QType::I8.full_range()).unwrap();
    assert!(matches!(
        quantize_blocking(ctx, Convention::Onnx, &[1.0; 5], &[2, 3], &params),
        Err(Error::ShapeMismatch {
            expected: 6,
            got: 5,
            ..
        })
    ));
    let axis = QuantParams::per_axis(1, vec![1.0; 2], vec![0; 2], QType::I8.full_range()).unwrap();
    assert!(matches!(
        quantize_blocking(ctx, Convention::Onnx, &[1.0; 6], &[2, 3], &axis),
        Err(Error::LengthMismatch { .. })
    ));
    // The reciprocal path refuses scales where flush-to-zero could change a result.
    let tiny = QuantParams::per_tensor(2e-38, 0, QType::I8.full_range()).unwrap(); // normal, below 2^-125
    assert!(matches!(
        quantize_blocking(ctx, Convention::PyTorch, &[1.0], &[1], &tiny),
        Err(Error::InvalidConfig { .. })
    ));
    // The division path has no such limit and stays exact.
    let got = quantize_blocking(
        ctx,
        Convention::Onnx,
        &[f32::from_bits(1), 1e-38],
        &[2],
        &tiny,
    )
    .unwrap();
    assert_eq!(
        got,
        quantize(Convention::Onnx, &[f32::from_bits(1), 1e-38], &[2], &tiny).unwrap()
    );
}

/// Packed words of `rows` rows read back from `out`, unpacked to storage bytes.
fn read_rows(
    ctx: &wgpu_quant::gpu::Context,
    out: &wgpu::Buffer,
    rows: usize,
    cols: usize,
) -> Vec<u8> {
    use wgpu_quant::gpu::buffers::read_blocking;
    let bytes = (rows * cols.div_ceil(4) * 4) as u64;
    let words: Vec<u32> = bytemuck::pod_collect_to_vec(&read_blocking(ctx, out, bytes).unwrap());
    assert_eq!(words.len(), rows * cols.div_ceil(4));
    wgpu_quant::quant::pack::unpack_bytes(&words, rows, cols).unwrap()
}

/// The params of the first `rows` rows: per-row (axis 0) params keep their first `rows`
/// channels, the others are unchanged.
fn prefix_params(params: &QuantParams, rows: usize) -> QuantParams {
    match params.axis() {
        Some(0) => QuantParams::per_axis(
            0,
            params.scales()[..rows].to_vec(),
            params.zero_points()[..rows].to_vec(),
            params.range(),
        )
        .unwrap(),
        _ => params.clone(),
    }
}

/// One prepared quantizer serves every batch size up to its capacity, per tensor, per
/// column and per row, equal to the reference on each prefix, for each convention.
#[test]
fn prepared_quantizer_serves_every_batch_size() {
    use wgpu_quant::gpu::buffers::{create, upload};
    use wgpu_quant::gpu::quantize::Quantizer;
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(23);
    let (max_rows, cols) = (11, 13);
    let mut x: Vec<f32> = (0..max_rows * cols)
        .map(|_| rng.uniform(-5.0, 5.0))
        .collect();
    let sp = specials();
    x[..sp.len().min(max_rows * cols)].copy_from_slice(&sp[..sp.len().min(max_rows * cols)]);
    let per_tensor = QuantParams::per_tensor(0.037, -3, QType::I8.full_range()).unwrap();
    let per_row = QuantParams::per_axis(
        0,
        (0..max_rows).map(|c| 0.02 + 0.001 * c as f32).collect(),
        (0..max_rows).map(|c| c as i32 - 5).collect(),
        QType::I8.full_range(),
    )
    .unwrap();
    let per_col = QuantParams::per_axis(
        1,
        (0..cols).map(|c| 0.5 / (c + 1) as f32).collect(),
        (0..cols).map(|c| 100 + c as i32).collect(),
        QType::U8.full_range(),
    )
    .unwrap();
    let input = upload(ctx, "x", &x, wgpu::BufferUsages::STORAGE).unwrap();
    let bytes = (max_rows * cols.div_ceil(4) * 4) as u64;
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let out = create(ctx, "q", bytes, usage).unwrap();
    for convention in Convention::ALL {
        for params in [&per_tensor, &per_row, &per_col] {
            let q = Quantizer::new(ctx, convention, params, max_rows, cols).unwrap();
            assert_eq!((q.max_rows(), q.cols()), (max_rows, cols));
            // Below and at capacity, in a mixed order and repeated (cached uniforms).
            for rows in [1, max_rows, 4, 2, max_rows, 7, 1, 4] {
                let mut encoder = ctx.device().create_command_encoder(&Default::default());
                q.encode(ctx, &mut encoder, rows, &input, &out).unwrap();
                ctx.queue().submit([encoder.finish()]);
                let got = read_rows(ctx, &out, rows, cols);
                let want = quantize(
                    convention,
                    &x[..rows * cols],
                    &[rows, cols],
                    &prefix_params(params, rows),
                )
                .unwrap();
                assert_eq!(got.len(), want.len());
                assert_eq!(got, want, "{convention:?} {:?} rows {rows}", params.axis());
            }
        }
    }
}

/// Several calls with different row counts in one encoder each read their own uniforms
/// (a shared uniform rewritten with `queue.write_buffer` would be reordered before them),
/// also after the per-row cache has been cleared.
#[test]
fn row_counts_in_one_encoder_keep_their_own_uniforms() {
    use wgpu_quant::gpu::buffers::{create, upload};
    use wgpu_quant::gpu::quantize::{Quantizer, ROW_CACHE_ENTRIES};
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(24);
    let (max_rows, cols) = (ROW_CACHE_ENTRIES + 6, 5);
    let x: Vec<f32> = (0..max_rows * cols)
        .map(|_| rng.uniform(-9.0, 9.0))
        .collect();
    let params = QuantParams::per_tensor(0.07, 2, QType::I8.full_range()).unwrap();
    let q = Quantizer::new(ctx, Convention::Onnx, &params, max_rows, cols).unwrap();
    let input = upload(ctx, "x", &x, wgpu::BufferUsages::STORAGE).unwrap();
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let bytes = (max_rows * cols.div_ceil(4) * 4) as u64;
    let outs: Vec<wgpu::Buffer> = (0..3)
        .map(|_| create(ctx, "q", bytes, usage).unwrap())
        .collect();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    for o in &outs {
        encoder.clear_buffer(o, 0, None);
    }
    // Every row count once (more than the cache holds), then three calls to check.
    for rows in 1..=max_rows {
        q.encode(ctx, &mut encoder, rows, &input, &outs[0]).unwrap();
    }
    let checks = [(3, 0), (max_rows, 1), (1, 2)];
    for &(rows, o) in &checks {
        q.encode(ctx, &mut encoder, rows, &input, &outs[o]).unwrap();
    }
    ctx.queue().submit([encoder.finish()]);
    for &(rows, o) in &checks {
        let got = read_rows(ctx, &outs[o], max_rows, cols);
        let want = quantize(Convention::Onnx, &x[..rows * cols], &[rows, cols], &params).unwrap();
        assert_eq!(got.len(), max_rows * cols);
        assert_eq!(&got[..rows * cols], &want[..], "rows {rows}");
        // Rows past this call's count were not written (the buffer was cleared to 0).
        if o != 0 {
            assert!(
                got[rows * cols..].iter().all(|&b| b == 0),
                "rows {rows} wrote past its rows"
            );
        }
    }
}

#[test]
fn prepared_quantizer_capacity_and_empty_calls() {
    use wgpu_quant::gpu::buffers::{create, upload};
    use wgpu_quant::gpu::quantize::{Quantizer, encode_quantize};
    let Some(ctx) = gpu() else { return };
    let params = QuantParams::per_tensor(0.5, 0, QType::I8.full_range()).unwrap();
    let q = Quantizer::new(ctx, Convention::Onnx, &params, 4, 6).unwrap();
    let input = upload(ctx, "x", &[1.0f32; 40], wgpu::BufferUsages::STORAGE).unwrap();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let out = upload(ctx, "q", &[0xdead_beefu32; 10], usage).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let err = q.encode(ctx, &mut encoder, 5, &input, &out).unwrap_err();
    assert_eq!(
        err,
        Error::CapacityExceeded {
            what: "quantize".into(),
            rows: 5,
            capacity: 4
        }
    );
    assert!(
        err.to_string().contains('5') && err.to_string().contains('4'),
        "{err}"
    );
    // Zero rows: nothing is recorded, the output keeps its contents.
    q.encode(ctx, &mut encoder, 0, &input, &out).unwrap();
    ctx.queue().submit([encoder.finish()]);
    let words: Vec<u32> = bytemuck::pod_collect_to_vec(
        &wgpu_quant::gpu::buffers::read_blocking(ctx, &out, 40).unwrap(),
    );
    assert_eq!(words, vec![0xdead_beef; 10]);
    // A too-small buffer for the rows asked is a typed error; enough for fewer rows is fine.
    let small = create(ctx, "small", 2 * 6 * 4, wgpu::BufferUsages::STORAGE).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    assert!(matches!(
        q.encode(ctx, &mut encoder, 3, &small, &out),
        Err(Error::BufferTooSmall { .. })
    ));
    q.encode(ctx, &mut encoder, 2, &small, &out).unwrap();
    // Sizes that overflow are typed errors naming the values, at build.
    let err = Quantizer::new(ctx, Convention::Onnx, &params, usize::MAX / 2, 3).unwrap_err();
    assert!(matches!(err, Error::SizeOverflow { .. }), "{err:?}");
    let err = Quantizer::new(ctx, Convention::Onnx, &params, 1 << 20, 1 << 13).unwrap_err();
    assert!(
        matches!(&err, Error::SizeOverflow { what } if what.contains("8589934592")),
        "{err:?}"
    );
    // The one-shot function still takes any shape, with an empty tensor a no-op.
    encode_quantize(
        ctx,
        &mut encoder,
        Convention::Onnx,
        &params,
        &[0, 6],
        &input,
        &out,
    )
    .unwrap();
    ctx.queue().submit([encoder.finish()]);
}

/// The one-shot path over a rank-3 tensor quantized along its middle axis, and the same
/// tensor through a prepared [`Quantizer::for_shape`] with fewer rows (a prefix).
#[test]
fn for_shape_keeps_channels_on_a_prefix() {
    use wgpu_quant::gpu::buffers::{create, upload};
    use wgpu_quant::gpu::quantize::Quantizer;
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(25);
    let shape = [3, 4, 5];
    let x: Vec<f32> = (0..60).map(|_| rng.uniform(-3.0, 3.0)).collect();
    let params = QuantParams::per_axis(
        1,
        vec![0.01, 0.02, 0.03, 0.04],
        vec![1, -1, 2, -2],
        QType::I8.full_range(),
    )
    .unwrap();
    let want = quantize(Convention::PyTorch, &x, &shape, &params).unwrap();
    assert_eq!(
        quantize_blocking(ctx, Convention::PyTorch, &x, &shape, &params).unwrap(),
        want
    );
    let q = Quantizer::for_shape(ctx, Convention::PyTorch, &params, &shape).unwrap();
    assert_eq!((q.max_rows(), q.cols()), (12, 5));
    let input = upload(ctx, "x", &x, wgpu::BufferUsages::STORAGE).unwrap();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let out = create(ctx, "q", 12 * 2 * 4, usage).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    q.encode(ctx, &mut encoder, 6, &input, &out).unwrap();
    ctx.queue().submit([encoder.finish()]);
    assert_eq!(read_rows(ctx, &out, 6, 5), want[..30].to_vec());
}

/// A rank-0 tensor is one element on the GPU as in the reference; per-axis params cannot
/// describe it.
#[test]
fn rank_zero_tensors_follow_the_reference() {
    let Some(ctx) = gpu() else { return };
    let params = QuantParams::per_tensor(0.25, 3, QType::I8.full_range()).unwrap();
    for x in [1.3f32, -7.5, 1e9, f32::NAN] {
        for convention in Convention::ALL {
            let gpu_q = quantize_blocking(ctx, convention, &[x], &[], &params).unwrap();
            let cpu_q = quantize(convention, &[x], &[], &params).unwrap();
            assert_eq!(gpu_q.len(), 1);
            assert_eq!(gpu_q, cpu_q, "{convention:?} {x}");
        }
    }
    let gpu_d = dequantize_blocking(ctx, &[7], &[], &params).unwrap();
    let cpu_d = dequantize(&[7], &[], &params).unwrap();
    assert_eq!(gpu_d.len(), 1);
    assert_eq!(gpu_d[0].to_bits(), cpu_d[0].to_bits());
    let axis = QuantParams::per_axis(0, vec![0.5], vec![0], QType::I8.full_range()).unwrap();
    assert!(matches!(
        quantize_blocking(ctx, Convention::Onnx, &[1.0], &[], &axis),
        Err(Error::AxisOutOfRange { rank: 0, .. })
    ));
}

/// int32 values where the conversion to f32 rounds (above 2^24, ties included), the ends of
/// i32, and small values, plus `random` draws over all of i32.
fn i32_edges(rng: &mut Rng, random: usize) -> Vec<i32> {
    const P24: i32 = 1 << 24;
    let mut v = vec![
        0,
        1,
        -1,
        2,
        -2,
        127,
        -128,
        P24 - 1,
        -(P24 - 1),
        P24,
        -P24,
        P24 + 1, // a tie: rounds to 2^24
        -(P24 + 1),
        P24 + 2,
        -(P24 + 2),
        P24 + 3, // a tie: rounds to 2^24 + 4
        -(P24 + 3),
        (1 << 30) + 64,  // a tie at ulp 128
        (1 << 30) + 192, // a tie that rounds up
        i32::MAX,        // rounds up to 2^31
        i32::MAX - 64,   // 2^31 - 65: just below a tie, rounds down
        i32::MAX - 63,   // 2^31 - 64: a tie, rounds up to 2^31
        i32::MIN,
        i32::MIN + 1,
        i32::MIN + 64,
        i32::MIN + 65,
    ];
    v.extend((0..random).map(|_| rng.next_u32() as i32));
    v.extend((0..random / 4).map(|_| rng.int(-1000, 1000)));
    v
}

/// The scales the int32 tests use: ordinary ones, a large normal one (`|i32::MIN| * s` is
/// still finite, just below `f32::MAX`), the smallest normal and another tiny normal one.
const I32_SCALES: [f32; 6] = [1.0, 0.0173, 3.0 / 17.0, 1.5e29, f32::MIN_POSITIVE, 1.7e-38];

/// Compares `got` with `want` by bits and returns the number of comparisons.
fn same_bits(got: &[f32], want: &[f32], q: &[i32], what: &str) -> usize {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let bad: Vec<String> = (0..got.len())
        .filter(|&i| got[i].to_bits() != want[i].to_bits())
        .take(5)
        .map(|i| {
            format!(
                "[{i}] q={} gpu={:e} ({:#010x}) cpu={:e} ({:#010x})",
                q[i],
                got[i],
                got[i].to_bits(),
                want[i],
                want[i].to_bits()
            )
        })
        .collect();
    assert!(bad.is_empty(), "{what}: {bad:?}");
    got.len()
}

/// Int32 dequantize (ONNX `DequantizeLinear` with int32 input) on the GPU equals the
/// reference bit for bit, per tensor and per axis (axes 0 and 1 of a shape whose size is not
/// a multiple of the workgroup, and the middle axis of a rank-3 tensor), on the values where
/// `f32(q)` rounds and with large and tiny scales.
#[test]
fn dequantize_i32_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(23);
    let mut compared = 0;
    // Per tensor: every edge value under each scale, and the product past f32::MAX
    // (saturating to ±Inf as in the reference; README, "Finite math").
    let q = i32_edges(&mut rng, 3000);
    for s in I32_SCALES.into_iter().chain([f32::MAX]) {
        for t in [QType::I8, QType::U8] {
            let params = QuantParams::per_tensor(s, 0, t.full_range()).unwrap();
            let want = dequantize_i32(&q, &[q.len()], &params).unwrap();
            assert_eq!(want[0].to_bits(), 0, "f32(0) * s is +0");
            let got = dequantize_i32_blocking(ctx, &q, &[q.len()], &params).unwrap();
            compared += same_bits(&got, &want, &q, &format!("per tensor s={s:e} {t:?}"));
        }
    }
    // Per axis: every scale appears in every channel position.
    for (shape, axis) in [
        (vec![6usize, 67], 0usize),
        (vec![5, 67], 1),
        (vec![3, 6, 7], 1),
    ] {
        let n: usize = shape.iter().product();
        let channels = shape[axis];
        let mut q = i32_edges(&mut rng, n);
        q.truncate(n);
        for shift in 0..I32_SCALES.len() {
            let scales = (0..channels)
                .map(|c| I32_SCALES[(c + shift) % I32_SCALES.len()])
                .collect();
            let params =
                QuantParams::per_axis(axis, scales, vec![0; channels], QType::I8.full_range())
                    .unwrap();
            let want = dequantize_i32(&q, &shape, &params).unwrap();
            let got = dequantize_i32_blocking(ctx, &q, &shape, &params).unwrap();
            compared += same_bits(&got, &want, &q, &format!("{shape:?} axis {axis}"));
        }
    }
    // A rank-0 tensor and an empty one.
    let params = QuantParams::per_tensor(0.5, 0, QType::I8.full_range()).unwrap();
    let got = dequantize_i32_blocking(ctx, &[i32::MIN], &[], &params).unwrap();
    let want = dequantize_i32(&[i32::MIN], &[], &params).unwrap();
    compared += same_bits(&got, &want, &[i32::MIN], "rank 0");
    assert!(
        dequantize_i32_blocking(ctx, &[], &[0, 3], &params)
            .unwrap()
            .is_empty()
    );
    eprintln!("dequantize_i32: {compared} values compared by bits");
    assert_eq!(compared, 58_043);
}

/// A non-zero zero point (int32 has none) and a length that does not fit the shape are typed
/// errors, the same on the GPU as in the reference.
#[test]
fn dequantize_i32_errors_are_typed() {
    let Some(ctx) = gpu() else { return };
    let zp = QuantParams::per_tensor(0.5, 3, QType::I8.full_range()).unwrap();
    let axis_zp =
        QuantParams::per_axis(1, vec![0.5; 3], vec![0, 0, -2], QType::I8.full_range()).unwrap();
    let ok = QuantParams::per_tensor(0.5, 0, QType::U8.full_range()).unwrap();
    let axis = QuantParams::per_axis(1, vec![0.5; 2], vec![0; 2], QType::I8.full_range()).unwrap();
    let cases: [(&QuantParams, &[i32], &[usize]); 4] = [
        (&zp, &[1; 6], &[2, 3]),
        (&axis_zp, &[1; 6], &[2, 3]),
        (&ok, &[1; 5], &[2, 3]),
        (&axis, &[1; 6], &[2, 3]),
    ];
    let mut errors = Vec::new();
    for (params, q, shape) in cases {
        let cpu = dequantize_i32(q, shape, params).unwrap_err();
        let gpu = dequantize_i32_blocking(ctx, q, shape, params).unwrap_err();
        assert_eq!(gpu, cpu, "{shape:?} {params:?}");
        errors.push(cpu);
    }
    assert!(
        matches!(&errors[0], Error::ZeroPointOutOfRange { what, value: 3, qmin: 0, qmax: 0 }
            if what.starts_with("zero_point[0]")),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(&errors[1], Error::ZeroPointOutOfRange { what, value: -2, .. }
            if what.starts_with("zero_point[2]")),
        "{:?}",
        errors[1]
    );
    assert!(
        matches!(
            errors[2],
            Error::ShapeMismatch {
                expected: 6,
                got: 5,
                ..
            }
        ),
        "{:?}",
        errors[2]
    );
    assert!(
        matches!(errors[3], Error::LengthMismatch { .. }),
        "{:?}",
        errors[3]
    );
}
