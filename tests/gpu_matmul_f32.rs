//! The FP32 baseline on the GPU stays within the written bound on every shape class.

use wgpu_quant::gpu::matmul_f32::F32Linear;
use wgpu_quant::reference::matmul_f32::matmul_f32_reference;

use crate::common::{Rng, gpu};

#[test]
fn within_the_written_bound() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(40);
    for &(m, n, k, bias) in &[
        (1, 1, 1, false),
        (3, 5, 7, true),
        (32, 32, 32, false),
        (33, 31, 65, true),
        (37, 55, 73, true),
        (1, 300, 1023, false),
        (2, 257, 64, true),
        (3, 5, 9, false),
        (64, 8, 4096, true),
    ] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-0.5, 0.5)).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let layer = F32Linear::new(ctx, &w, n, k, bias.then_some(&b[..])).unwrap();
        let y = layer.run_blocking(ctx, &a, m).unwrap();
        let r = matmul_f32_reference(&a, &w, bias.then_some(&b[..]), m, n, k).unwrap();
        assert_eq!(y.len(), r.values.len(), "{m}x{n}x{k}: output length");
        let worst = y
            .iter()
            .zip(r.values.iter().zip(&r.bounds))
            .map(|(&y, (&v, &b))| (f64::from(y) - v).abs() / b)
            .fold(0.0, f64::max);
        assert!(r.accepts(&y), "{m}x{n}x{k}: worst error / bound = {worst}");
    }
}

/// Every M, N, K in 1..=10 (both kernels: GEMV for M <= 3, the 8 x 8 GEMM above; K % 4 of
/// every value, so both load variants), with and without a bias.
#[test]
fn small_shapes_within_the_bound() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(44);
    for k in 1..=10 {
        for n in 1..=10 {
            let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-0.5, 0.5)).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let bias = (n + k) % 2 == 0;
            let layer = F32Linear::new(ctx, &w, n, k, bias.then_some(&b[..])).unwrap();
            for m in 1..=10 {
                let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
                let y = layer.run_blocking(ctx, &a, m).unwrap();
                let r = matmul_f32_reference(&a, &w, bias.then_some(&b[..]), m, n, k).unwrap();
                assert!(
                    r.accepts(&y),
                    "{m}x{n}x{k} bias {bias}: {y:?} vs {:?}",
                    r.values
                );
            }
        }
    }
}

/// The tiles ± 1: the GEMM's 64 x 64 workgroup tile and 8 x 8 invocation block, the GEMV's
/// 512 columns per workgroup, with K around a vec4 and a few of them.
#[test]
fn tile_edges_within_the_bound() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(45);
    let shapes = [
        (63, 65, 5),
        (64, 64, 64),
        (65, 63, 63),
        (7, 9, 4),
        (8, 8, 3),
        (9, 7, 65),
        (1, 511, 9),
        (2, 512, 8),
        (3, 513, 7),
        (1, 8, 4097),
        (4, 7, 1),
    ];
    for &(m, n, k) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-0.5, 0.5)).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let y = F32Linear::new(ctx, &w, n, k, Some(&b))
            .unwrap()
            .run_blocking(ctx, &a, m)
            .unwrap();
        let r = matmul_f32_reference(&a, &w, Some(&b), m, n, k).unwrap();
        assert!(r.accepts(&y), "{m}x{n}x{k}");
    }
}

/// Weights above the binding limit are split along N; results stay within the bound.
#[test]
fn split_weights() {
    let Some(ctx) = gpu() else { return };
    let small = ctx.clone().with_binding_limit(4096);
    let mut rng = Rng::new(41);
    let (m, n, k) = (7, 90, 70);
    let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
    let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-0.5, 0.5)).collect();
    let b: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let y = F32Linear::new(&small, &w, n, k, Some(&b))
        .unwrap()
        .run_blocking(&small, &a, m)
        .unwrap();
    assert!(
        matmul_f32_reference(&a, &w, Some(&b), m, n, k)
            .unwrap()
            .accepts(&y)
    );
}

#[test]
fn errors_are_typed() {
    let Some(ctx) = gpu() else { return };
    assert!(matches!(
        F32Linear::new(ctx, &[1.0; 5], 2, 3, None),
        Err(wgpu_quant::Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        F32Linear::new(ctx, &[f32::NAN; 6], 2, 3, None),
        Err(wgpu_quant::Error::NonFiniteInput { .. })
    ));
    let l = F32Linear::new(ctx, &[1.0; 6], 2, 3, None).unwrap();
    assert!(matches!(
        l.run_blocking(ctx, &[1.0; 4], 2),
        Err(wgpu_quant::Error::ShapeMismatch { .. })
    ));
}

/// Plain rows in a buffer of exactly `m × K` floats, for K with and without a remainder
/// mod 4: the scalar-load variant reads no float past a row (the next row's +Inf times a
/// zero weight would make NaN), and the vec4 variant is unchanged.
#[test]
fn plain_rows_any_k() {
    use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(42);
    for k in [1, 2, 3, 4, 5, 6, 7, 8, 13, 31, 64, 129] {
        for m in [1, 2, 4, 5, 9] {
            let n = 6;
            let mut a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
            let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-0.5, 0.5)).collect();
            let layer = F32Linear::new(ctx, &w, n, k, None).unwrap();
            // The last row holds +Inf first: only its own outputs may be non-finite.
            a[(m - 1) * k] = f32::INFINITY;
            let input = upload(ctx, "a", &a, wgpu::BufferUsages::STORAGE).unwrap();
            assert_eq!(input.size(), (m * k * 4) as u64);
            let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
            let out = create(ctx, "y", (m * n * 4) as u64, usage).unwrap();
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            layer.encode(ctx, &mut encoder, m, &input, &out).unwrap();
            ctx.queue().submit([encoder.finish()]);
            let y: Vec<f32> = bytemuck::pod_collect_to_vec(
                &read_blocking(ctx, &out, (m * n * 4) as u64).unwrap(),
            );
            assert_eq!(y.len(), m * n);
            let finite = m - 1;
            let r = matmul_f32_reference(&a[..finite * k], &w, None, finite, n, k).unwrap();
            assert!(
                r.accepts(&y[..finite * n]),
                "{m}x{n}x{k}: {:?} vs {:?}",
                &y[..finite * n],
                r.values
            );
            // Every weight row's first entry meets the Inf: ±Inf, never a silent finite.
            assert!(
                y[finite * n..].iter().all(|v| v.is_infinite()),
                "{m}x{n}x{k}: {:?}",
                &y[finite * n..]
            );
        }
    }
}

/// `Relu`, `Relu6`, `ReluN1To1` and any `[lo, hi]` clamp after the product and bias, within the
/// written bound of the clamped reference, on both load variants and both shapes.
#[test]
fn activations_within_the_bound() {
    use wgpu_quant::Activation;
    use wgpu_quant::reference::matmul_f32::{f32_activation_clamp, matmul_f32_reference_clamped};
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(43);
    let activations = [
        Activation::None,
        Activation::Relu,
        Activation::Relu6,
        Activation::ReluN1To1,
        Activation::Clamp { lo: -0.25, hi: 0.5 },
        Activation::Clamp {
            lo: f32::NEG_INFINITY,
            hi: 0.0,
        },
        Activation::Clamp { lo: 0.3, hi: 0.3 },
    ];
    for &(m, n, k) in &[(2, 9, 12), (37, 21, 30), (1, 5, 7), (8, 33, 64)] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.uniform(-3.0, 3.0)).collect();
        let base = F32Linear::new(ctx, &w, n, k, Some(&b)).unwrap();
        let plain = base.run_blocking(ctx, &a, m).unwrap(); // fills the shared cache
        for activation in activations {
            let clamp = f32_activation_clamp(activation).unwrap();
            let layer = base.clone().with_activation(activation).unwrap();
            assert_eq!(layer.clamp(), clamp);
            let y = layer.run_blocking(ctx, &a, m).unwrap();
            let r = matmul_f32_reference_clamped(&a, &w, Some(&b), m, n, k, clamp).unwrap();
            assert_eq!(y.len(), r.values.len());
            assert!(r.accepts(&y), "{activation:?} {m}x{n}x{k}");
            if let Some((lo, hi)) = clamp {
                assert!(y.iter().all(|&v| lo <= v && v <= hi), "{activation:?}");
                // The same clamp through with_clamp gives the same bits.
                let again = base
                    .clone()
                    .with_clamp(lo, hi)
                    .unwrap()
                    .run_blocking(ctx, &a, m)
                    .unwrap();
                assert_eq!(bits(&again), bits(&y));
                // Unclamped values inside the range are untouched.
                assert_eq!(plain.len(), y.len());
                for (p, v) in plain.iter().zip(&y) {
                    if lo < *p && *p < hi {
                        assert_eq!(p.to_bits(), v.to_bits());
                    }
                }
            }
        }
        // The clones did not change the original's cached dispatches.
        assert_eq!(bits(&base.run_blocking(ctx, &a, m).unwrap()), bits(&plain));
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// NaN passes through the clamp (select, not float min/max), on both load variants.
#[test]
fn nan_passes_through_the_clamp() {
    use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
    let Some(ctx) = gpu() else { return };
    for k in [4, 5] {
        let (m, n) = (5, 3);
        let w = vec![0.5f32; n * k];
        let layer = F32Linear::new(ctx, &w, n, k, None)
            .unwrap()
            .with_clamp(0.0, 6.0)
            .unwrap();
        let mut a = vec![1.0f32; m * k];
        a[2 * k + 1] = f32::NAN;
        a[3 * k] = -100.0;
        a[4 * k] = 100.0;
        let input = upload(ctx, "a", &a, wgpu::BufferUsages::STORAGE).unwrap();
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let out = create(ctx, "y", (m * n * 4) as u64, usage).unwrap();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        layer.encode(ctx, &mut encoder, m, &input, &out).unwrap();
        ctx.queue().submit([encoder.finish()]);
        let y: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read_blocking(ctx, &out, (m * n * 4) as u64).unwrap());
        assert_eq!(y.len(), m * n);
        let half_k = 0.5 * k as f32;
        for c in 0..n {
            assert_eq!(y[c], half_k, "k {k}");
            assert!(y[2 * n + c].is_nan(), "k {k}: {}", y[2 * n + c]);
            assert_eq!(y[3 * n + c], 0.0, "k {k}");
            assert_eq!(y[4 * n + c], 6.0, "k {k}");
        }
    }
}

#[test]
fn clamp_errors_are_typed() {
    use wgpu_quant::reference::matmul_f32::matmul_f32_reference_clamped;
    use wgpu_quant::{Activation, Error};
    // The reference alone (no GPU): the clamp after the sum, the bound unchanged.
    let (a, w) = ([1.0, 2.0], [3.0, -4.0]);
    let r = matmul_f32_reference_clamped(&a, &w, None, 2, 2, 1, Some((0.0, 5.0))).unwrap();
    assert_eq!(r.values, vec![3.0, 0.0, 5.0, 0.0]);
    let plain = matmul_f32_reference(&a, &w, None, 2, 2, 1).unwrap();
    assert_eq!(plain.values, vec![3.0, -4.0, 6.0, -8.0]);
    assert_eq!(r.bounds, plain.bounds);
    assert!(matches!(
        matmul_f32_reference_clamped(&[1.0], &[1.0], None, 1, 1, 1, Some((1.0, 0.0))),
        Err(Error::InvalidConfig { .. })
    ));
    let Some(ctx) = gpu() else { return };
    let l = F32Linear::new(ctx, &[1.0; 6], 2, 3, None).unwrap();
    for (lo, hi) in [(f32::NAN, 1.0), (0.0, f32::NAN), (2.0, 1.0)] {
        assert!(matches!(
            l.clone().with_clamp(lo, hi),
            Err(Error::InvalidConfig { .. })
        ));
    }
    assert!(matches!(
        l.clone()
            .with_activation(Activation::ClampQuantized { lo: 0, hi: 10 }),
        Err(Error::Mismatch(_))
    ));
    assert!(matches!(
        l.clone()
            .with_activation(Activation::Clamp { lo: 1.0, hi: -1.0 }),
        Err(Error::InvalidConfig { .. })
    ));
    assert_eq!(
        l.clone()
            .with_clamp(f32::NEG_INFINITY, f32::INFINITY)
            .unwrap()
            .clamp(),
        Some((f32::NEG_INFINITY, f32::INFINITY))
    );
    // m = 0 is a no-op; a buffer too small for m plain rows is a typed error.
    assert_eq!(l.run_blocking(ctx, &[], 0).unwrap(), Vec::<f32>::new());
    let small =
        wgpu_quant::gpu::buffers::upload(ctx, "a", &[1.0f32; 5], wgpu::BufferUsages::STORAGE)
            .unwrap();
    let out = wgpu_quant::gpu::buffers::create(ctx, "y", 64, wgpu::BufferUsages::STORAGE).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    assert!(matches!(
        l.encode(ctx, &mut encoder, 2, &small, &out),
        Err(Error::BufferTooSmall { .. })
    ));
    let err = l
        .encode(ctx, &mut encoder, usize::MAX / 2, &small, &out)
        .unwrap_err();
    assert!(matches!(err, Error::SizeOverflow { .. }), "{err:?}");
}

/// Activations and outputs above the binding limit are split along M (as `QLinear` does):
/// an output of several binding limits is accepted, and every row has the same bits as the
/// unsplit run (each output is computed by the same operations, only bound elsewhere), for
/// both load variants and both kernel shapes.
#[test]
fn split_along_m_above_the_binding_limit() {
    let Some(ctx) = gpu() else { return };
    let limit = 4096u64;
    let small = ctx.clone().with_binding_limit(limit);
    let mut rng = Rng::new(43);
    for &(m, n, k) in &[
        (200, 24, 16),
        (150, 20, 7),
        (97, 9, 40),
        (3, 300, 12),
        (130, 70, 13),
        (1, 600, 5),
    ] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-0.5, 0.5)).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let out_bytes = (m * n * 4) as u64;
        let in_bytes = (m * k * 4) as u64;
        assert!(out_bytes.max(in_bytes) > limit || n * k * 4 > limit as usize);
        let whole = F32Linear::new(ctx, &w, n, k, Some(&b)).unwrap();
        let split = F32Linear::new(&small, &w, n, k, Some(&b)).unwrap();
        let want = whole.run_blocking(ctx, &a, m).unwrap();
        let got = split
            .run_blocking(&small, &a, m)
            .unwrap_or_else(|e| panic!("{m}x{n}x{k}: {e}"));
        assert_eq!(got.len(), m * n);
        assert_eq!(bits(&got), bits(&want), "{m}x{n}x{k}");
        let r = matmul_f32_reference(&a, &w, Some(&b), m, n, k).unwrap();
        assert!(r.accepts(&got), "{m}x{n}x{k}");
    }
    // One row wider than the binding limit cannot be split: a typed error.
    let n = 1100;
    let wide = F32Linear::new(&small, &vec![0.5; n * 4], n, 4, None).unwrap();
    let e = wide.run_blocking(&small, &[1.0; 8], 2).unwrap_err();
    assert!(matches!(e, wgpu_quant::Error::Unsupported(_)), "{e:?}");
}
