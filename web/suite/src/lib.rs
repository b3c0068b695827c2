//! The browser suite of `wgpu-quant`: its tests (`tests/browser.rs`) run the bit-exact checks
//! of every kernel family in headless Chromium, through wasm-bindgen-test's runner. This
//! library is empty; `scripts/browser-test.sh` builds and runs the tests.
