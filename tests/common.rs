//! Shared test helpers: the GPU context (skipping loudly, or failing under `REQUIRE_GPU=1`)
//! and a small seeded generator so every random test is reproducible.

use std::sync::OnceLock;

use wgpu_quant::gpu::Context;

/// The shared headless context, or `None` (with a printed SKIP) when no adapter exists.
/// With `REQUIRE_GPU=1` a missing adapter fails the test instead.
pub fn gpu() -> Option<&'static Context> {
    static CTX: OnceLock<Result<Context, String>> = OnceLock::new();
    match CTX.get_or_init(|| Context::headless().map_err(|e| e.to_string())) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            if std::env::var("REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("REQUIRE_GPU=1 but no GPU adapter is available: {e}");
            }
            eprintln!("SKIPPED (no GPU adapter; set REQUIRE_GPU=1 to fail instead): {e}");
            None
        }
    }
}

/// `SplitMix64`: tiny, seeded, good enough for test data.
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
        // Sum of 12 uniforms minus 6: close enough to normal for calibration tests.
        (0..n)
            .map(|_| {
                let s: f32 = (0..12).map(|_| self.uniform(0.0, 1.0)).sum();
                (s - 6.0) * sigma
            })
            .collect()
    }
}
