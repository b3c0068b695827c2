//! The examples run as tests, so they cannot rot: each is included as a module and its
//! `run` checked.

#[allow(
    dead_code,
    unused_imports,
    reason = "the example's main is not called here"
)]
#[path = "../examples/digits.rs"]
mod digits;
#[allow(dead_code, reason = "the example's main is not called here")]
#[path = "../examples/embed.rs"]
mod embed;
#[allow(dead_code, reason = "the example's main is not called here")]
#[path = "../examples/headless_test.rs"]
mod headless_test;

use crate::common::gpu;

#[test]
fn digits_int8_is_accurate_and_bit_exact() {
    let Some(ctx) = gpu() else { return };
    let figures = digits::run(ctx, 1).unwrap();
    assert_eq!(figures.len(), 3);
    let fp32 = &figures[0];
    assert!(fp32.accuracy > 0.95, "FP32 accuracy {}", fp32.accuracy);
    for f in &figures[1..] {
        assert!(
            f.accuracy >= fp32.accuracy - 0.01,
            "{}: {} vs FP32 {}",
            f.name,
            f.accuracy,
            fp32.accuracy
        );
        assert!(f.agreement > 0.97, "{}: agreement {}", f.name, f.agreement);
        assert_eq!(f.bit_exact, Some(true), "{}", f.name);
    }
}

#[test]
fn embed_example_matches_the_reference() {
    if gpu().is_none() {
        return;
    }
    let (y, reference) = pollster::block_on(embed::run())
        .unwrap()
        .expect("an adapter");
    assert_eq!(y.len(), reference.len());
    assert!(!y.is_empty());
    assert_eq!(
        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        reference.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn headless_test_example_runs() {
    if gpu().is_none() {
        return;
    }
    let adapter = headless_test::run().unwrap();
    assert!(adapter.is_some());
}
