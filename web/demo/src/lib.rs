//! `wgpu-quant-demo`: the digits model and the FP32 vs INT8 benchmark on the page's WebGPU
//! adapter (`web/demo/index.html`, `web/demo/bench.html`; built by `scripts/build-demo.sh`).
//!
//! The work is plain async Rust over `wgpu_quant` ([`digits::Demo`], [`bench`]), which also
//! builds and runs natively (`cargo test -p wgpu-quant-demo`); the `#[wasm_bindgen]`
//! functions below hand its figures to the page's JavaScript as plain objects. One demo lives
//! in the page: each call takes it out of its slot, awaits, and puts it back, so the page must
//! not start a call while another is running (it disables its buttons meanwhile).

pub mod bench;
pub mod digits;
pub mod kernels;

use std::cell::RefCell;

use js_sys::{Array, Float32Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::timer::GpuTimer;

use crate::digits::{Demo, PIXELS, Which};

thread_local! {
    static DEMO: RefCell<Option<Demo>> = const { RefCell::new(None) };
}

fn js_error(e: wgpu_quant::Error) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

fn take() -> Result<Demo, JsValue> {
    DEMO.with(|d| d.borrow_mut().take())
        .ok_or_else(|| js_sys::Error::new("the demo is not started, or a call is running").into())
}

fn put(demo: Demo) {
    DEMO.with(|d| *d.borrow_mut() = Some(demo));
}

/// A plain JavaScript object from `(key, value)` pairs.
fn object(fields: Vec<(&str, JsValue)>) -> JsValue {
    let o = Object::new();
    for (k, v) in fields {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &JsValue::from_str(k), &v);
    }
    o.into()
}

fn option_bool(b: Option<bool>) -> JsValue {
    b.map_or(JsValue::NULL, JsValue::from_bool)
}

/// Logs panics to the console (they would otherwise read as "unreachable executed").
#[wasm_bindgen(start)]
pub fn main() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&JsValue::from_str(&format!("wgpu-quant-demo: {info}")));
    }));
}

/// The autotune's records on `ctx` as plain objects: `class`, `shape`, `candidates`
/// (`[{kernel, ms}]`, in the order measured), `winner`, `winner_ms`, `heuristic`,
/// `heuristic_ms` (null when not among the candidates).
fn tuning_objects(rows: &[kernels::TuneRow]) -> JsValue {
    let list = Array::new();
    for r in rows {
        let candidates = Array::new();
        for (kernel, ms) in &r.candidates {
            candidates.push(&object(vec![
                ("kernel", kernel.clone().into()),
                ("ms", (*ms).into()),
            ]));
        }
        list.push(&object(vec![
            ("class", r.class.clone().into()),
            ("shape", r.shape.clone().into()),
            ("candidates", candidates.into()),
            ("winner", r.winner.clone().into()),
            ("winner_ms", r.winner_ms.into()),
            ("heuristic", r.heuristic.clone().into()),
            (
                "heuristic_ms",
                r.heuristic_ms.map_or(JsValue::NULL, JsValue::from_f64),
            ),
        ]));
    }
    list.into()
}

/// Takes the page's WebGPU adapter, loads the compiled-in digits model, autotunes its layer
/// shapes when `tune` is true (awaited; a few seconds on a software adapter) and calibrates
/// the two INT8 models, which then run the measured winners. Resolves to the adapter's
/// description: `adapter`, `backend`, `driver`, `dot_product`, `dot4_self_test`,
/// `timestamps`, `timing`, `test_rows`, `report`, and the kernels: `tuned`, `tune_ms` (the
/// autotune's wall time), `tuning` (its records, as [`benchmark`]'s), `kernels` (`{static,
/// dynamic}`: each model's kernel at 540 rows) and `kernels_single` (at 1 row).
///
/// # Errors
/// Rejects with the library's error (no WebGPU adapter, device request, calibration, the
/// autotune's timed runs).
#[wasm_bindgen]
pub async fn start(tune: bool) -> Result<JsValue, JsValue> {
    let ctx = Context::headless_async().await.map_err(js_error)?;
    let caps = ctx.capabilities();
    let t0 = web_time::Instant::now();
    let demo = if tune {
        Demo::tuned(ctx.clone()).await
    } else {
        Demo::new(ctx.clone())
    }
    .map_err(js_error)?;
    let tune_ms = if tune {
        t0.elapsed().as_secs_f64() * 1e3
    } else {
        0.0
    };
    let timing = demo.timing_source().map_err(js_error)?;
    let model_kernels = |m: usize| {
        object(
            [Which::Static, Which::Dynamic]
                .iter()
                .map(|&w| {
                    (
                        w.key(),
                        demo.quantized(w)
                            .map(|q| kernels::model(q, m))
                            .unwrap_or_default()
                            .into(),
                    )
                })
                .collect(),
        )
    };
    let (kernels_batch, kernels_single) = (model_kernels(demo.test_rows()), model_kernels(1));
    let info = object(vec![
        ("adapter", caps.adapter_name.unwrap_or_default().into()),
        (
            "backend",
            caps.backend
                .map(|b| format!("{b:?}"))
                .unwrap_or_default()
                .into(),
        ),
        ("driver", caps.driver.unwrap_or_default().into()),
        ("dot_product", caps.dot_product.as_str().into()),
        ("dot4_self_test", caps.dot4_self_test.as_str().into()),
        ("timestamps", caps.timestamp_queries.into()),
        ("timing", timing.into()),
        ("test_rows", (demo.test_rows() as u32).into()),
        ("report", demo.report().into()),
        ("tuned", tune.into()),
        ("tune_ms", tune_ms.into()),
        ("tuning", tuning_objects(&kernels::tuning(&ctx))),
        ("kernels", kernels_batch),
        ("kernels_single", kernels_single),
    ]);
    put(demo);
    Ok(info)
}

/// The native example's figures on the test split, one object per model: `name`, `key`,
/// `accuracy`, `correct`, `agreement`, `bit_exact` (null for FP32), `batch_ms`, `single_ms`,
/// `gpu_batch_ms`; `runs` timed runs per timing.
///
/// # Errors
/// Rejects when the demo is not started or busy, and with GPU errors.
#[wasm_bindgen]
pub async fn evaluate(runs: u32) -> Result<JsValue, JsValue> {
    let mut demo = take()?;
    let figures = demo.evaluate(runs.max(1) as usize).await;
    put(demo);
    let out = Array::new();
    for f in figures.map_err(js_error)? {
        out.push(&object(vec![
            ("name", f.which.name().into()),
            ("key", f.which.key().into()),
            ("accuracy", f.accuracy.into()),
            ("correct", (f.correct as u32).into()),
            ("agreement", f.agreement.into()),
            ("bit_exact", option_bool(f.bit_exact)),
            ("batch_ms", f.batch_ms.into()),
            ("single_ms", f.single_ms.into()),
            ("gpu_batch_ms", f.gpu_batch_ms.into()),
        ]));
    }
    Ok(out.into())
}

/// The three models' answers for one image of 64 pixels in [0, 1] (intensity / 16): one
/// object per model with `name`, `key`, `class`, `probabilities` (`Float32Array`),
/// `bit_exact` (null for FP32).
///
/// # Errors
/// Rejects when the demo is not started or busy, for a wrong pixel count, and with GPU errors.
#[wasm_bindgen]
pub async fn predict(pixels: Vec<f32>) -> Result<JsValue, JsValue> {
    if pixels.len() != PIXELS {
        return Err(js_sys::Error::new(&format!(
            "predict takes {PIXELS} pixels, got {}",
            pixels.len()
        ))
        .into());
    }
    let mut demo = take()?;
    let predictions = demo.predict(&pixels).await;
    put(demo);
    let out = Array::new();
    for p in predictions.map_err(js_error)? {
        out.push(&object(vec![
            ("name", p.which.name().into()),
            ("key", p.which.key().into()),
            ("class", (p.class as u32).into()),
            (
                "probabilities",
                Float32Array::from(p.probabilities.as_slice()).into(),
            ),
            ("bit_exact", option_bool(p.bit_exact)),
        ]));
    }
    Ok(out.into())
}

/// Test image `i`: `{ pixels: Float32Array (64, in [0, 1]), label }`.
///
/// # Errors
/// Rejects when the demo is not started or busy, or `i` is out of range.
#[wasm_bindgen]
pub fn test_image(i: u32) -> Result<JsValue, JsValue> {
    let demo = take()?;
    let found = demo.test_image(i as usize).map(|(pixels, label)| {
        object(vec![
            ("pixels", Float32Array::from(pixels).into()),
            ("label", label.into()),
        ])
    });
    put(demo);
    found.ok_or_else(|| js_sys::Error::new(&format!("no test image {i}")).into())
}

/// The browser benchmark (see [`bench`]): GEMM 256³, 512³, 1024³, GEMV 1×4096×4096 and the
/// digits MLP at 540 rows, FP32 vs INT8, median of `runs`; with `tune`, each INT8 shape is
/// autotuned first (the digits shapes were by [`start`]) and its layer built afterwards, so it
/// runs the measured winners. Then each INT8 model's stages timed one by one. `progress` is
/// called with a line of text before each step. Resolves to `{ timing, runs, tuned, tune_ms,
/// rows: [{op, shape, fp32_ms, int8_ms, ratio, fp32_gops, int8_gops, int8_kernel}],
/// markdown, tuning: [{class, shape, candidates: [{kernel, ms}], winner, winner_ms,
/// heuristic, heuristic_ms}], tuning_markdown, stages: [{model, stage, ms}],
/// stages_markdown }`; `tune_ms` is the wall time of this call's autotune runs.
///
/// # Errors
/// Rejects when the demo is not started or busy, and with GPU errors.
#[wasm_bindgen]
pub async fn benchmark(
    runs: u32,
    tune: bool,
    progress: js_sys::Function,
) -> Result<JsValue, JsValue> {
    let mut demo = take()?;
    let result = run_benchmark(&mut demo, runs.max(1) as usize, tune, &progress).await;
    let tuning = kernels::tuning(demo.context());
    put(demo);
    let Bench {
        timing,
        rows,
        stages,
        tune_ms,
    } = result.map_err(js_error)?;
    let list = Array::new();
    for r in &rows {
        list.push(&object(vec![
            ("op", r.op.into()),
            ("shape", r.shape.clone().into()),
            ("fp32_ms", r.fp32_ms.into()),
            ("int8_ms", r.int8_ms.into()),
            ("ratio", r.ratio().into()),
            ("fp32_gops", r.fp32_gops().into()),
            ("int8_gops", r.int8_gops().into()),
            ("int8_kernel", r.int8_kernel.clone().into()),
        ]));
    }
    let stage_list = Array::new();
    for t in &stages {
        stage_list.push(&object(vec![
            ("model", t.model.into()),
            ("stage", t.stage.clone().into()),
            ("ms", t.ms.into()),
        ]));
    }
    let whole: Vec<(&str, f64)> = [Which::Static, Which::Dynamic]
        .iter()
        .filter_map(|w| {
            let shape = format!("({})", w.name());
            rows.iter()
                .find(|r| r.op == "model" && r.shape.ends_with(&shape))
                .map(|r| (w.name(), r.int8_ms))
        })
        .collect();
    Ok(object(vec![
        ("timing", timing.into()),
        ("runs", runs.max(1).into()),
        ("tuned", tune.into()),
        ("tune_ms", tune_ms.into()),
        ("rows", list.into()),
        ("markdown", bench::markdown(&rows).into()),
        ("tuning", tuning_objects(&tuning)),
        ("tuning_markdown", kernels::tuning_markdown(&tuning).into()),
        ("stages", stage_list.into()),
        (
            "stages_markdown",
            bench::stages_markdown(&stages, &whole).into(),
        ),
    ]))
}

/// What [`run_benchmark`] measured.
struct Bench {
    timing: &'static str,
    rows: Vec<bench::Row>,
    stages: Vec<bench::StageTime>,
    tune_ms: f64,
}

async fn run_benchmark(
    demo: &mut Demo,
    runs: usize,
    tune: bool,
    progress: &js_sys::Function,
) -> wgpu_quant::Result<Bench> {
    let ctx = demo.context().clone();
    let timer = GpuTimer::new(&ctx)?;
    let say = |line: String| {
        let _ = progress.call1(&JsValue::NULL, &JsValue::from_str(&line));
    };
    let mut rows = Vec::new();
    let mut tune_ms = 0.0;
    for shape in bench::SHAPES {
        let (m, n, k) = shape;
        if tune {
            say(format!("the autotune for {n}×{k} (GEMM and GEMV) …"));
            let t0 = web_time::Instant::now();
            wgpu_quant::gpu::tune::autotune(&ctx, n, k).await?;
            tune_ms += t0.elapsed().as_secs_f64() * 1e3;
        }
        say(format!("{m}×{n}×{k} …"));
        // Built after the autotune: the INT8 layer takes the winners (nothing is measured
        // again here, the classes are cached).
        rows.push(bench::linear(&ctx, &timer, runs, tune, shape).await?);
    }
    say("digits MLP …".into());
    rows.extend(bench::model(demo, &timer, runs).await?);
    say("the INT8 models' stages one by one …".into());
    let stages = bench::stages(demo, &timer, runs).await?;
    Ok(Bench {
        timing: timer.source().as_str(),
        rows,
        stages,
        tune_ms,
    })
}
