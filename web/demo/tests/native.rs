//! The page's figures computed natively (the same code the wasm runs): the INT8 models are bit
//! exact against their CPU reference and the accuracies are the native example's.

use wgpu_quant::prelude::*;
use wgpu_quant_demo::digits::{Demo, Which};

#[test]
fn figures_match_the_native_example() {
    let ctx = match Context::headless() {
        Ok(ctx) => ctx,
        Err(e) if std::env::var_os("REQUIRE_GPU").is_none() => {
            eprintln!("SKIPPED: no adapter ({e})");
            return;
        }
        Err(e) => panic!("no adapter and REQUIRE_GPU is set: {e}"),
    };
    let mut demo = Demo::new(ctx).expect("demo");
    let figures = pollster::block_on(demo.evaluate(2)).expect("evaluate");
    for f in &figures {
        eprintln!("{f:?}");
    }
    assert_eq!(figures[0].which, Which::Fp32);
    // data/digits/README.md: the float model's test accuracy is 526 / 540.
    assert_eq!(figures[0].correct, 526);
    assert_eq!(figures[1].bit_exact, Some(true));
    assert_eq!(figures[2].bit_exact, Some(true));
    let (pixels, label) = demo.test_image(0).expect("image 0");
    let pixels = pixels.to_vec();
    let predictions = pollster::block_on(demo.predict(&pixels)).expect("predict");
    assert_eq!(predictions.len(), 3);
    assert!(predictions.iter().all(|p| p.bit_exact != Some(false)));
    eprintln!(
        "image 0: label {label}, predictions {:?}",
        predictions.iter().map(|p| p.class).collect::<Vec<_>>()
    );
}
