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

use std::cell::RefCell;

use js_sys::{Array, Float32Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::timer::GpuTimer;

use crate::digits::{Demo, PIXELS};

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

/// Takes the page's WebGPU adapter, loads the compiled-in digits model and calibrates the two
/// INT8 models. Resolves to the adapter's description: `adapter`, `backend`, `driver`,
/// `dot_product`, `dot4_self_test`, `timestamps`, `timing`, `test_rows`, `report`.
///
/// # Errors
/// Rejects with the library's error (no WebGPU adapter, device request, calibration).
#[wasm_bindgen]
pub async fn start() -> Result<JsValue, JsValue> {
    let ctx = Context::headless_async().await.map_err(js_error)?;
    let caps = ctx.capabilities();
    let demo = Demo::new(ctx).map_err(js_error)?;
    let timing = demo.timing_source().map_err(js_error)?;
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
/// digits MLP at 540 rows, FP32 vs INT8, median of `runs`. `progress` is called with a line
/// of text before each case. Resolves to `{ timing, runs, rows: [{op, shape, fp32_ms,
/// int8_ms, ratio, fp32_gops, int8_gops}], markdown }`.
///
/// # Errors
/// Rejects when the demo is not started or busy, and with GPU errors.
#[wasm_bindgen]
pub async fn benchmark(runs: u32, progress: js_sys::Function) -> Result<JsValue, JsValue> {
    let mut demo = take()?;
    let result = run_benchmark(&mut demo, runs.max(1) as usize, &progress).await;
    put(demo);
    let (timing, rows) = result.map_err(js_error)?;
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
        ]));
    }
    Ok(object(vec![
        ("timing", timing.into()),
        ("runs", runs.max(1).into()),
        ("rows", list.into()),
        ("markdown", bench::markdown(&rows).into()),
    ]))
}

async fn run_benchmark(
    demo: &mut Demo,
    runs: usize,
    progress: &js_sys::Function,
) -> wgpu_quant::Result<(&'static str, Vec<bench::Row>)> {
    let ctx = demo.context().clone();
    let timer = GpuTimer::new(&ctx)?;
    let say = |line: String| {
        let _ = progress.call1(&JsValue::NULL, &JsValue::from_str(&line));
    };
    let mut rows = Vec::new();
    for shape in bench::SHAPES {
        say(format!("{}×{}×{} …", shape.0, shape.1, shape.2));
        rows.push(bench::linear(&ctx, &timer, runs, shape).await?);
    }
    say("digits MLP …".into());
    rows.extend(bench::model(demo, &timer, runs).await?);
    Ok((timer.source().as_str(), rows))
}
