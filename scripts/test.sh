#!/usr/bin/env bash
# The whole test suite: CPU numerics, the long sweeps, doc tests, and the GPU tests
# (on lavapipe when the machine has no GPU). Extra arguments go to the test binary.
# REQUIRE_GPU=1 turns a skipped GPU test into a failure (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-vulkan.sh
# The sweeps marked #[ignore] (10^7 divisions, exhaustive f16) are part of the suite:
# --include-ignored runs them with everything else.
cargo test --test root -- --include-ignored "$@"
# Unit tests of crate-private machinery (the deferred error-scope path a browser takes).
cargo test --lib
cargo test --doc
