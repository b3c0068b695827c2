//! The bit-exact suite in a real browser: every kernel family on the page's WebGPU adapter
//! (in CI headless Chromium: Dawn, the Tint WGSL compiler and SwiftShader's Vulkan) equals the
//! CPU reference, compiled to wasm and run in the same page, bit for bit; the FP32 baseline
//! within its written bound. Shape classes and epilogues mirror the native suite
//! (`tests/gpu_*.rs`), sized to stay fast on a software adapter.
//!
//! Each test prints the adapter and the number of bit-exact element comparisons it made
//! (`scripts/browser-test.sh` adds them up). Run with `--nocapture` to see them.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;

mod dynamic;
mod f32;
mod gemm;
mod kernels;
mod nn;
mod quantize;
