#!/usr/bin/env bash
# The whole test suite: CPU numerics, the long sweeps, doc tests, the GPU tests (on lavapipe
# when the machine has no GPU), and the browser suite (headless Chromium's WebGPU; Chromium,
# chromedriver, the wasm32 target and wasm-bindgen's runner are installed when missing).
# Extra arguments go to the native test binary.
# REQUIRE_GPU=1 turns a skipped GPU test, or a browser suite that cannot run, into a failure
# (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-vulkan.sh
# The sweeps marked #[ignore] (10^7 divisions, exhaustive f16) are part of the suite:
# --include-ignored runs them with everything else.
cargo test --test root -- --include-ignored "$@"
# Unit tests of crate-private machinery (the deferred error-scope path a browser takes).
cargo test --lib
cargo test --doc
# The same bit-exact checks on a second, independent WebGPU implementation (Dawn/Tint on
# SwiftShader without a GPU), against the CPU reference compiled to wasm.
scripts/browser-test.sh
# The demo page and the browser benchmark (web/demo) in headless Chromium over WebDriver:
# built, opened, their figures checked (INT8 bit-exact, the native example's accuracies);
# the screenshot and the benchmark table go to target/demo/.
scripts/test-demo.py --build --runs 3
