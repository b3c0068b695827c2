//! The FP32 baseline in the browser stays within its written bound
//! `|y - ref| <= gamma_K * sum |a||w|` (DESIGN.md: the crate's only tolerance) on every shape
//! class, with every activation and split above the binding limit (the native
//! `tests/gpu_matmul_f32.rs`). These are bound checks, not bit-exact ones: they are not in
//! the bit-exact count.

use wasm_bindgen_test::{console_log, wasm_bindgen_test};
use wgpu_quant::Activation;
use wgpu_quant::gpu::matmul_f32::F32Linear;
use wgpu_quant::reference::matmul_f32::{
    f32_activation_clamp, matmul_f32_reference, matmul_f32_reference_clamped,
};

use crate::common::{Rng, Test};

#[wasm_bindgen_test]
async fn within_the_written_bound() {
    let t = Test::start("f32::within_the_written_bound").await;
    let ctx = &t.ctx;
    let mut rng = Rng::new(40);
    let mut elements = 0;
    let small = ctx.clone().with_binding_limit(4096);
    for &(m, n, k, bias, split) in &[
        (1, 1, 1, false, false),
        (3, 5, 7, true, false),
        (32, 32, 32, false, false),
        (33, 31, 65, true, false),
        (37, 55, 73, true, false),
        (1, 300, 1023, false, false),
        (2, 257, 64, true, false),
        (3, 5, 9, false, false),
        (64, 8, 4096, true, false),
        (7, 90, 70, true, true),
        (70, 20, 30, false, true),
    ] {
        let ctx = if split { &small } else { ctx };
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-0.5, 0.5)).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let layer = F32Linear::new(ctx, &w, n, k, bias.then_some(&b[..])).unwrap();
        let y = layer.run(ctx, &a, m).await.unwrap();
        let r = matmul_f32_reference(&a, &w, bias.then_some(&b[..]), m, n, k).unwrap();
        assert_eq!(y.len(), r.values.len(), "{m}x{n}x{k}: output length");
        let worst = y
            .iter()
            .zip(r.values.iter().zip(&r.bounds))
            .map(|(&y, (&v, &b))| (f64::from(y) - v).abs() / b)
            .fold(0.0, f64::max);
        assert!(r.accepts(&y), "{m}x{n}x{k}: worst error / bound = {worst}");
        elements += y.len();
    }
    console_log!("f32::within_the_written_bound: elements within the bound: {elements}");
}

#[wasm_bindgen_test]
async fn activations_within_the_bound() {
    let t = Test::start("f32::activations_within_the_bound").await;
    let ctx = &t.ctx;
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
    ];
    let mut elements = 0;
    for &(m, n, k) in &[(2, 9, 12), (37, 21, 30), (1, 5, 7), (8, 33, 64)] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.uniform(-3.0, 3.0)).collect();
        let base = F32Linear::new(ctx, &w, n, k, Some(&b)).unwrap();
        for activation in activations {
            let clamp = f32_activation_clamp(activation).unwrap();
            let layer = base.clone().with_activation(activation).unwrap();
            let y = layer.run(ctx, &a, m).await.unwrap();
            let r = matmul_f32_reference_clamped(&a, &w, Some(&b), m, n, k, clamp).unwrap();
            assert_eq!(y.len(), r.values.len());
            assert!(r.accepts(&y), "{activation:?} {m}x{n}x{k}");
            if let Some((lo, hi)) = clamp {
                assert!(y.iter().all(|&v| lo <= v && v <= hi), "{activation:?}");
            }
            elements += y.len();
        }
    }
    console_log!("f32::activations_within_the_bound: elements within the bound: {elements}");
}
