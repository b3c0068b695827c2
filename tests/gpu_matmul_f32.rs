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
        let worst = y
            .iter()
            .zip(r.values.iter().zip(&r.bounds))
            .map(|(&y, (&v, &b))| (f64::from(y) - v).abs() / b)
            .fold(0.0, f64::max);
        assert!(r.accepts(&y), "{m}x{n}x{k}: worst error / bound = {worst}");
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
