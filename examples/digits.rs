//! Real data, real weights: a 64-128-64-10 MLP trained on scikit-learn's digits
//! (`scripts/train_digits.py`, output committed in `data/digits/`), calibrated on training
//! images, quantized to INT8 statically and dynamically, and run on the GPU next to its FP32
//! baseline: accuracy, agreement, a bit-exact check against the CPU reference, timings.
//!
//! Run: `cargo run --release --example digits`.

use std::path::PathBuf;
use std::time::Instant;

use wgpu_quant::io::SafeTensorsFile;
use wgpu_quant::nn::argmax_rows;
use wgpu_quant::prelude::*;

/// One model's figures on the test split.
#[derive(Debug)]
pub struct Figures {
    /// Which model.
    pub name: &'static str,
    /// Test accuracy.
    pub accuracy: f64,
    /// Fraction of test images whose prediction equals FP32's.
    pub agreement: f64,
    /// GPU output equals `model.reference` bit for bit (INT8 only).
    pub bit_exact: Option<bool>,
    /// Median wall time of one run over the whole test split (540 rows), ms.
    pub batch_ms: f64,
    /// Median wall time of one single-image run, ms.
    pub single_ms: f64,
}

fn data(name: &str) -> PathBuf {
    let compiled = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/digits")
        .join(name);
    if compiled.exists() {
        compiled
    } else {
        PathBuf::from("data/digits").join(name)
    }
}

/// Median milliseconds of `runs` calls.
fn time(runs: usize, mut f: impl FnMut() -> Result<Vec<f32>>) -> Result<f64> {
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

/// Everything the example measures; `runs` timed runs per figure.
///
/// # Errors
/// Loading, calibration and GPU errors.
pub fn run(ctx: &Context, runs: usize) -> Result<Vec<Figures>> {
    // --- the user's code: load, calibrate, quantize, run ---
    let weights = SafeTensorsFile::load(data("mlp.safetensors"))?;
    let float = FloatModel::sequential(&weights, &["fc1", "fc2", "fc3"], Activation::Relu)?;
    let digits = SafeTensorsFile::load(data("digits.safetensors"))?;
    let (x_train, train_shape) = digits.get_f32_any_shape("x_train")?;
    let (x_test, test_shape) = digits.get_f32_any_shape("x_test")?;
    let labels = digits.get_i32("y_test", &test_shape[..1])?;
    let (rows, calibration_rows) = (test_shape[0], train_shape[0].min(512));
    let calibration = &x_train[..calibration_rows * 64];

    let mut fp32 = F32Model::new(ctx, &float, rows)?;
    let config = QuantConfig::static_int8().max_batch(rows);
    let mut static_int8 =
        QuantizedModel::calibrate(ctx, &float, calibration, calibration_rows, &config)?;
    let config = QuantConfig::dynamic_int8().max_batch(rows);
    let mut dynamic_int8 =
        QuantizedModel::calibrate(ctx, &float, calibration, calibration_rows, &config)?;

    let y_fp32 = fp32.run_blocking(ctx, &x_test, rows)?;
    let fp32_pred = argmax_rows(&y_fp32, 10);
    let accuracy = |pred: &[usize]| {
        pred.iter()
            .zip(&labels)
            .filter(|(p, l)| **p as i32 == **l)
            .count() as f64
            / rows as f64
    };
    let agreement = |pred: &[usize]| {
        pred.iter().zip(&fp32_pred).filter(|(a, b)| a == b).count() as f64 / rows as f64
    };
    // --- end of the user's code; below, the figures ---
    let mut figures = vec![Figures {
        name: "FP32",
        accuracy: accuracy(&fp32_pred),
        agreement: 1.0,
        bit_exact: None,
        batch_ms: time(runs, || fp32.run_blocking(ctx, &x_test, rows))?,
        single_ms: time(runs, || fp32.run_blocking(ctx, &x_test[..64], 1))?,
    }];
    for (name, model) in [
        ("INT8 static", &mut static_int8),
        ("INT8 dynamic", &mut dynamic_int8),
    ] {
        let y = model.run_blocking(ctx, &x_test, rows)?;
        let reference = model.reference(&x_test, rows)?;
        let pred = argmax_rows(&y, 10);
        figures.push(Figures {
            name,
            accuracy: accuracy(&pred),
            agreement: agreement(&pred),
            bit_exact: Some(
                y.iter()
                    .zip(&reference)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
                    && y.len() == reference.len(),
            ),
            batch_ms: time(runs, || model.run_blocking(ctx, &x_test, rows))?,
            single_ms: time(runs, || model.run_blocking(ctx, &x_test[..64], 1))?,
        });
    }
    if let Some(report) = static_int8.report() {
        println!("{report}");
    }
    Ok(figures)
}

#[allow(
    dead_code,
    reason = "the test suite includes this file and calls run()"
)]
fn main() -> Result<()> {
    let ctx = Context::headless()?;
    println!(
        "adapter: {}",
        ctx.capabilities().adapter_name.unwrap_or_default()
    );
    let figures = run(&ctx, 21)?;
    println!(
        "| model | accuracy | agreement with FP32 | bit-exact vs reference | 540 rows (ms) | 1 row (ms) |"
    );
    println!("|---|---|---|---|---|---|");
    for f in &figures {
        println!(
            "| {} | {:.2} % | {:.2} % | {} | {:.3} | {:.3} |",
            f.name,
            f.accuracy * 100.0,
            f.agreement * 100.0,
            f.bit_exact.map_or("-".to_string(), |b| if b {
                "yes".into()
            } else {
                "NO".into()
            }),
            f.batch_ms,
            f.single_ms
        );
    }
    Ok(())
}
