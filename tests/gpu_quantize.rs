//! GPU quantize and dequantize equal the CPU reference bit for bit: every convention, both
//! types, per tensor and per axis, NaN, ±Inf, -0, subnormals, ties and saturation.

use wgpu_quant::gpu::quantize::{dequantize_blocking, quantize_blocking};
use wgpu_quant::reference::quantize::{dequantize, quantize};
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

/// The prepared quantizer gives the same bytes as the per-call path and the reference.
#[test]
fn prepared_quantizer_matches() {
    use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
    use wgpu_quant::gpu::quantize::Quantizer;
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(23);
    let shape = [11, 13];
    let x: Vec<f32> = (0..11 * 13).map(|_| rng.uniform(-5.0, 5.0)).collect();
    let params = QuantParams::per_axis(
        0,
        (0..11).map(|c| 0.02 + 0.001 * c as f32).collect(),
        vec![3; 11],
        QType::I8.full_range(),
    )
    .unwrap();
    let q = Quantizer::new(ctx, Convention::TfLite, &params, &shape).unwrap();
    let input = upload(ctx, "x", &x, wgpu::BufferUsages::STORAGE).unwrap();
    let bytes = (11 * 13usize.div_ceil(4) * 4) as u64;
    let out = create(
        ctx,
        "q",
        bytes,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    )
    .unwrap();
    for _ in 0..2 {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        q.encode(ctx, &mut encoder, &input, &out).unwrap();
        ctx.queue().submit([encoder.finish()]);
        let words: Vec<u32> =
            bytemuck::pod_collect_to_vec(&read_blocking(ctx, &out, bytes).unwrap());
        let got = wgpu_quant::quant::pack::unpack_bytes(&words, 11, 13).unwrap();
        assert_eq!(
            got,
            quantize(Convention::TfLite, &x, &shape, &params).unwrap()
        );
    }
}
