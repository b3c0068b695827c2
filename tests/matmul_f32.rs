//! The FP32 reference and its written bound: every legitimate f32 evaluation order is
//! accepted, a result off by more than the bound is not.

use wgpu_quant::Error;
use wgpu_quant::reference::matmul_f32::{gamma, matmul_f32_reference};

use crate::common::Rng;

fn orders(a: &[f32], w: &[f32], k: usize) -> [f32; 3] {
    let seq: f32 = (0..k).fold(0.0, |s, i| s + a[i] * w[i]);
    let fused: f32 = (0..k).fold(0.0, |s, i| a[i].mul_add(w[i], s));
    // Pairwise-ish: four interleaved partial sums, as a vectorised kernel would.
    let mut part = [0.0f32; 4];
    for i in 0..k {
        part[i % 4] += a[i] * w[i];
    }
    [seq, fused, (part[0] + part[1]) + (part[2] + part[3])]
}

#[test]
fn every_order_is_within_the_bound() {
    let mut rng = Rng::new(32);
    for &(m, n, k) in &[(3, 4, 1), (5, 7, 64), (2, 3, 1000), (1, 9, 4097)] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-1.0, 1.0) * 1e-3).collect();
        let r = matmul_f32_reference(&a, &w, None, m, n, k).unwrap();
        for order in 0..3 {
            let y: Vec<f32> = (0..m * n)
                .map(|i| orders(&a[(i / n) * k..][..k], &w[(i % n) * k..][..k], k)[order])
                .collect();
            assert!(r.accepts(&y), "order {order} at {m}x{n}x{k}");
            // A result off by twice the bound (plus one ulp) is rejected.
            let mut off = y.clone();
            off[0] += (2.0 * r.bounds[0]) as f32 + f32::EPSILON * off[0].abs().max(1e-30);
            assert!(!r.accepts(&off), "perturbed result accepted at {m}x{n}x{k}");
        }
    }
}

#[test]
fn gamma_and_errors() {
    assert_eq!(
        gamma(1, 0.5f64.powi(24)),
        2f64.powi(-24) / (1.0 - 2f64.powi(-24))
    );
    assert!(matches!(
        matmul_f32_reference(&[1.0], &[f32::NAN], None, 1, 1, 1),
        Err(Error::NonFiniteInput { .. })
    ));
    assert!(matches!(
        matmul_f32_reference(&[1.0], &[1.0], Some(&[1.0, 2.0]), 1, 1, 1),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        matmul_f32_reference(&[1.0; 3], &[1.0; 2], None, 1, 1, 2),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// Issue 10 §1: with K = 0 the operands are empty and nothing bounds M * N: a product that
/// overflows, or an output that cannot be allocated, is a typed error, never an abort.
#[test]
fn huge_outputs_are_typed_errors() {
    for (m, n) in [(usize::MAX, 2), (1 << 40, 1 << 40), (1 << 61, 1)] {
        let err = matmul_f32_reference(&[], &[], None, m, n, 0).unwrap_err();
        assert!(
            matches!(err, Error::SizeOverflow { .. }),
            "{m} x {n}: {err}"
        );
    }
    // A small K = 0 product is the zero matrix (plus bias).
    let r = matmul_f32_reference(&[], &[], Some(&[1.5, -2.0]), 2, 2, 0).unwrap();
    assert_eq!(r.values, vec![1.5, -2.0, 1.5, -2.0]);
}
