//! Quantize and dequantize in the browser equal the CPU reference bit for bit: every
//! convention, both types, per tensor and per axis, NaN, ±Inf, -0, subnormals, ties and
//! saturation (the native `tests/gpu_quantize.rs`).

use wasm_bindgen_test::wasm_bindgen_test;
use wgpu_quant::gpu::quantize::{dequantize, quantize};
use wgpu_quant::reference::quantize as reference;
use wgpu_quant::{Convention, QType, QuantParams};

use crate::common::{Rng, Test, count};

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

/// Asserts the quantized bytes are equal, naming the first inputs that differ.
fn assert_bytes(got: &[u8], want: &[u8], x: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let bad: Vec<String> = (0..want.len())
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
    assert!(bad.is_empty(), "{what}: {bad:?}");
    count(want.len());
}

#[wasm_bindgen_test]
async fn quantize_matches_reference_everywhere() {
    let t = Test::start("quantize::quantize_matches_reference_everywhere").await;
    let ctx = &t.ctx;
    let mut rng = Rng::new(21);
    let mut x = specials();
    x.extend((0..2000).map(|_| rng.uniform(-40.0, 40.0)));
    x.extend((0..500).map(|_| f32::from_bits(rng.next_u32())));
    // Odd column count: rows padded to whole words.
    let cols = 7;
    let rows = x.len().div_ceil(cols);
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
        for &(s, zp, ty) in &per_tensor {
            let params = QuantParams::per_tensor(s, zp, ty.full_range()).unwrap();
            let want = reference::quantize(convention, &x, &shape, &params).unwrap();
            let got = quantize(ctx, convention, &x, &shape, &params)
                .await
                .unwrap();
            assert_bytes(
                &got,
                &want,
                &x,
                &format!("{convention:?} s={s} zp={zp} {ty:?}"),
            );
        }
        // Per axis, both axes, narrow range.
        for axis in [0, 1] {
            let n = shape[axis];
            let scales: Vec<f32> = (0..n).map(|c| 0.05 + 0.013 * c as f32).collect();
            let zps: Vec<i32> = (0..n).map(|c| (c as i32 % 9) - 4).collect();
            let params =
                QuantParams::per_axis(axis, scales, zps, QType::I8.narrow_range()).unwrap();
            let want = reference::quantize(convention, &x, &shape, &params).unwrap();
            let got = quantize(ctx, convention, &x, &shape, &params)
                .await
                .unwrap();
            assert_bytes(&got, &want, &x, &format!("{convention:?} axis {axis}"));
        }
        // Rank 0.
        let params = QuantParams::per_tensor(0.3, 2, QType::I8.full_range()).unwrap();
        for v in [1.05f32, -0.0, f32::NAN, 1e30] {
            let want = reference::quantize(convention, &[v], &[], &params).unwrap();
            let got = quantize(ctx, convention, &[v], &[], &params).await.unwrap();
            assert_bytes(&got, &want, &[v], &format!("{convention:?} rank 0"));
        }
    }
    // The division path is exact down to subnormal inputs and tiny scales.
    let tiny = QuantParams::per_tensor(2e-38, 0, QType::I8.full_range()).unwrap();
    let x = [f32::from_bits(1), 1e-38];
    let want = reference::quantize(Convention::Onnx, &x, &[2], &tiny).unwrap();
    let got = quantize(ctx, Convention::Onnx, &x, &[2], &tiny)
        .await
        .unwrap();
    assert_bytes(&got, &want, &x, "Onnx tiny scale");
    t.done();
}

#[wasm_bindgen_test]
async fn dequantize_matches_reference() {
    let t = Test::start("quantize::dequantize_matches_reference").await;
    let ctx = &t.ctx;
    let mut rng = Rng::new(22);
    let shape = [13, 9];
    let q = rng.bytes(13 * 9);
    for ty in [QType::I8, QType::U8] {
        let (lo, hi) = ty.storage_range();
        let tensor = QuantParams::per_tensor(0.0173, rng.int(lo, hi), ty.full_range()).unwrap();
        let axis0 = QuantParams::per_axis(
            0,
            (0..13).map(|c| 3e-2 / (c + 1) as f32).collect(),
            (0..13).map(|_| rng.int(lo, hi)).collect(),
            ty.full_range(),
        )
        .unwrap();
        let axis1 = QuantParams::per_axis(
            1,
            (0..9).map(|c| 1e-3 * (c + 1) as f32).collect(),
            (0..9).map(|_| rng.int(lo, hi)).collect(),
            ty.full_range(),
        )
        .unwrap();
        for params in [tensor, axis0, axis1] {
            let want = reference::dequantize(&q, &shape, &params).unwrap();
            let got = dequantize(ctx, &q, &shape, &params).await.unwrap();
            assert_eq!(got.len(), want.len(), "{ty:?} {:?}: length", params.axis());
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{ty:?} {:?}", params.axis());
            count(want.len());
        }
    }
    t.done();
}
