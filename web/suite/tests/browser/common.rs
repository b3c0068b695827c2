//! The shared context (one per page), the adapter line every test prints, the count of
//! bit-exact comparisons, and the seeded generator of the native suite (`tests/common.rs`).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::console_log;
use wgpu_quant::gpu::Context;

thread_local! {
    static CTX: RefCell<Option<Context>> = const { RefCell::new(None) };
    static ADAPTER: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Bit-exact element comparisons made so far in this page (tests run one at a time).
static CHECKS: AtomicU64 = AtomicU64::new(0);

/// Records `n` elements compared bit for bit.
pub fn count(n: usize) {
    CHECKS.fetch_add(n as u64, Ordering::Relaxed);
}

/// A test's adapter line and its tally of bit-exact comparisons, printed when it ends.
pub struct Test {
    name: &'static str,
    start: u64,
    pub ctx: Context,
}

impl Test {
    /// Gets the page's context (created on first use: no adapter is a failure, never a
    /// skip) and prints the adapter it runs on.
    pub async fn start(name: &'static str) -> Test {
        let cached = CTX.with(|c| c.borrow().clone());
        let ctx = match cached {
            Some(ctx) => ctx,
            None => {
                let ctx = Context::headless_async()
                    .await
                    .unwrap_or_else(|e| panic!("{name}: no WebGPU adapter in this browser: {e}"));
                CTX.with(|c| *c.borrow_mut() = Some(ctx.clone()));
                ctx
            }
        };
        let adapter = match ADAPTER.with(|a| a.borrow().clone()) {
            Some(line) => line,
            None => {
                let line = describe(&ctx).await;
                ADAPTER.with(|a| *a.borrow_mut() = Some(line.clone()));
                line
            }
        };
        console_log!("{name}: adapter {adapter}");
        Test {
            name,
            start: CHECKS.load(Ordering::Relaxed),
            ctx,
        }
    }

    /// Prints this test's number of bit-exact comparisons (the script sums these lines).
    pub fn done(self) {
        let n = CHECKS.load(Ordering::Relaxed) - self.start;
        assert!(n > 0, "{}: made no bit-exact comparison", self.name);
        console_log!("{}: bit-exact element comparisons: {n}", self.name);
    }
}

/// The adapter as wgpu reports it (name, backend, driver) and as the page's
/// `GPUAdapterInfo` does (vendor, architecture: wgpu's WebGPU backend drops those), with
/// the capabilities the kernels choose paths from.
async fn describe(ctx: &Context) -> String {
    let info = ctx
        .adapter_info()
        .expect("a headless context knows its adapter");
    let caps = ctx.capabilities();
    let js = js_adapter_info().await.unwrap_or_else(|e| format!("({e})"));
    format!(
        "name {:?}, backend {:?}, driver {:?} {:?}, type {:?}; GPUAdapterInfo {js}; \
         shader-f16 {} (f16 outputs need none: rounded with integer arithmetic), \
         subgroups {}, timestamp queries {}, dot4 self-test {:?}, max storage binding {} bytes",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        info.device_type,
        caps.shader_f16,
        caps.subgroups,
        caps.timestamp_queries,
        ctx.dot4_self_test(),
        caps.max_storage_buffer_binding_size,
    )
}

/// `navigator.gpu.requestAdapter()`'s `info`, read through reflection (web-sys's WebGPU
/// bindings need an unstable cfg).
async fn js_adapter_info() -> Result<String, String> {
    let get = |v: &JsValue, k: &str| {
        js_sys::Reflect::get(v, &JsValue::from_str(k)).map_err(|e| format!("{k}: {e:?}"))
    };
    let gpu = get(&get(&js_sys::global(), "navigator")?, "gpu")?;
    let request: js_sys::Function = get(&gpu, "requestAdapter")?
        .dyn_into()
        .map_err(|_| "requestAdapter is not a function".to_string())?;
    let promise: js_sys::Promise = request
        .call0(&gpu)
        .map_err(|e| format!("{e:?}"))?
        .dyn_into()
        .map_err(|_| "requestAdapter returned no promise".to_string())?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(|e| format!("{e:?}"))?;
    if adapter.is_null() {
        return Err("requestAdapter() returned null".into());
    }
    let info = get(&adapter, "info")?;
    let mut parts = Vec::new();
    for key in ["vendor", "architecture", "device", "description"] {
        parts.push(format!(
            "{key} {:?}",
            get(&info, key)?.as_string().unwrap_or_default()
        ));
    }
    let fallback = get(&info, "isFallbackAdapter")?
        .as_bool()
        .or_else(|| get(&adapter, "isFallbackAdapter").ok()?.as_bool());
    parts.push(format!("fallback {fallback:?}"));
    Ok(parts.join(", "))
}

/// `SplitMix64`: the native suite's generator, so seeds mean the same data on both sides.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }
    /// Uniform integer in [lo, hi].
    pub fn int(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i32
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    pub fn normals(&mut self, n: usize, sigma: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let s: f32 = (0..12).map(|_| self.uniform(0.0, 1.0)).sum();
                (s - 6.0) * sigma
            })
            .collect()
    }
}
