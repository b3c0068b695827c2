#!/usr/bin/env bash
# The browser suite: web/suite's tests (every kernel family, bit for bit against the CPU
# reference compiled to wasm) in headless Chromium's WebGPU, through wasm-bindgen's test
# runner and chromedriver. Installs what is missing first (scripts/ensure-browser.sh).
# Prints the adapter, each test's count of bit-exact comparisons and their total.
# REQUIRE_GPU=1 (CI) makes a missing browser or adapter a failure; without it, a browser
# that cannot be had is a loud skip. A skipped or ignored test is always a failure: the only
# skips allowed are named capabilities the adapter lacks ("skipped: ... (adapter lacks X)").
# Extra arguments go to the test binary (e.g. a test-name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if ! source scripts/ensure-browser.sh || [ "${BROWSER_SUITE_READY:-0}" != 1 ]; then
    if [ "${REQUIRE_GPU:-}" = 1 ]; then
        echo "REQUIRE_GPU=1 but the browser suite cannot run (see above)." >&2
        exit 1
    fi
    echo "SKIPPED: the browser suite (no Chromium/chromedriver/runner; set REQUIRE_GPU=1 to fail instead)" >&2
    exit 0
fi
set -euo pipefail

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$root/web/suite/webdriver.json"
# The runner's limit covers the whole binary (one page); its default is 20 s.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}"

log=$(mktemp "${TMPDIR:-/tmp}/wgpu-quant-browser.XXXXXX")
trap 'rm -f "$log"' EXIT
start=$SECONDS
status=0
# --nocapture: the adapter and the counts are printed by passing tests too.
cargo test -p wgpu-quant-browser-tests --target wasm32-unknown-unknown --test browser \
    -- --nocapture "$@" 2>&1 | grep --line-buffered -v '^Invoking test: ' | tee "$log" || status=$?
[ "$status" -eq 0 ] || { echo "browser suite: FAILED" >&2; exit "$status"; }

fail() { echo "browser suite: $*" >&2; exit 1; }
grep -q '^test result: ok\.' "$log" || fail "no test result line (did the tests run?)"
summary=$(grep '^test result: ' "$log" | tail -n 1)
ignored=$(printf '%s' "$summary" | sed -n 's/.* \([0-9][0-9]*\) ignored.*/\1/p')
[ "${ignored:-0}" = 0 ] || fail "$ignored ignored test(s): a silent skip is a failure"
grep -q ': adapter ' "$log" || fail "no adapter was printed"
allowed='^skipped: .* \(adapter lacks [a-z0-9-]+\)$'
if grep -i 'skip' "$log" | grep -vE "$allowed" | grep -q .; then
    fail "a skip that names no missing capability: $(grep -i 'skip' "$log" | grep -vE "$allowed" | head -n 3)"
fi
skips=$(grep -cE "$allowed" "$log" || true)
total=$(awk -F'bit-exact element comparisons: ' 'NF == 2 { s += $2 } END { print s + 0 }' "$log")
[ "$total" -gt 0 ] || fail "no bit-exact comparison was made"
adapter=$(grep -m1 ": adapter " "$log" | sed "s/^.*: adapter //")
echo "browser suite: adapter $adapter"
echo "browser suite: $total bit-exact element comparisons in Chromium, all equal; capability skips: $skips; $((SECONDS - start)) s"
