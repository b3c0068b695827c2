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

/// The autotuned demo and the benchmark's pieces: the autotune's records are sane, the INT8
/// layers built after it run the measured winners and stay bit-exact, every benchmark row
/// names its kernel, and the stage breakdown covers every stage of both INT8 models.
#[test]
fn tuned_demo_and_benchmark_pieces() {
    use wgpu_quant::gpu::timer::GpuTimer;
    use wgpu_quant::gpu::tune::ChoiceSource;
    use wgpu_quant_demo::{bench, kernels};

    let ctx = match Context::headless() {
        Ok(ctx) => ctx,
        Err(e) if std::env::var_os("REQUIRE_GPU").is_none() => {
            eprintln!("SKIPPED: no adapter ({e})");
            return;
        }
        Err(e) => panic!("no adapter and REQUIRE_GPU is set: {e}"),
    };
    let mut demo = pollster::block_on(Demo::tuned(ctx.clone())).expect("tuned demo");
    let tuning = kernels::tuning(&ctx);
    eprint!("{}", kernels::tuning_markdown(&tuning));
    // fc1 (128×64), fc2 (64×128), fc3 (10×64): three GEMM and three GEMV classes today.
    assert!(tuning.len() >= 3, "{} records", tuning.len());
    for r in &tuning {
        assert!(r.candidates.len() >= 2, "{r:?}");
        assert!(r.candidates.iter().any(|(c, _)| *c == r.winner), "{r:?}");
    }
    for which in [Which::Static, Which::Dynamic] {
        let model = demo.quantized(which).expect("an INT8 model");
        for layer in model.layers() {
            assert_eq!(layer.kernel().source, ChoiceSource::Measured);
        }
        let names = kernels::model(model, 540);
        eprintln!("{}: {names}", which.name());
        assert!(names.contains("(measured)"), "{names}");
    }
    let figures = pollster::block_on(demo.evaluate(1)).expect("evaluate");
    assert_eq!(figures[1].bit_exact, Some(true));
    assert_eq!(figures[2].bit_exact, Some(true));

    let timer = GpuTimer::new(&ctx).expect("timer");
    for shape in [(40, 48, 64), (1, 48, 64)] {
        let row = pollster::block_on(bench::linear(&ctx, &timer, 1, true, shape)).expect("linear");
        eprintln!("{row:?}");
        assert!(row.int8_kernel.ends_with("(measured)"), "{row:?}");
    }
    let rows = pollster::block_on(bench::model(&mut demo, &timer, 1)).expect("model");
    assert!(rows.iter().all(|r| r.int8_kernel.contains("(measured)")));
    let stages = pollster::block_on(bench::stages(&demo, &timer, 1)).expect("stages");
    let whole: Vec<(&str, f64)> = rows
        .iter()
        .zip(["INT8 static", "INT8 dynamic"])
        .map(|(r, m)| (m, r.int8_ms))
        .collect();
    eprint!("{}", bench::stages_markdown(&stages, &whole));
    // Static: quantize + 3 linear; dynamic: 3 × (dynamic quantize + linear).
    let count = |m: &str| stages.iter().filter(|s| s.model == m).count();
    assert_eq!((count("INT8 static"), count("INT8 dynamic")), (4, 6));
    // Two quantizer rules, the dynamic quantizer's two other workgroup sizes and per tensor.
    assert_eq!(count(bench::COMPARISON), 5);
    assert!(stages.iter().all(|s| s.ms > 0.0));
}
