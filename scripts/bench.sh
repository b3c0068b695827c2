#!/usr/bin/env bash
# Runs the FP32 vs INT8 benchmark binary on the default adapter (lavapipe when the machine
# has no GPU). Arguments go to the binary, e.g. `scripts/bench.sh --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-vulkan.sh
cargo run --release --bin wgpu-quant-bench -- "$@"
