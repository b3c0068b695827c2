#!/usr/bin/env bash
# Makes sure the browser suite can run: the wasm32 target, wasm-bindgen's test runner at the
# version in Cargo.lock, and headless Chromium with its chromedriver. Whatever is missing is
# installed, saying so first: the target with rustup, the runner with `cargo install
# wasm-bindgen-cli` (minutes, once), Chromium with apt-get (as root, or through sudo).
# Sourced by scripts/browser-test.sh; sets BROWSER_SUITE_READY=1 when everything is there.
# When something cannot be had it says what, and returns 1 (the caller decides: a failure
# under REQUIRE_GPU=1, a loud skip otherwise).
set -euo pipefail
BROWSER_SUITE_READY=0

# The wasm-bindgen version the crates are built against: the runner must be the same one.
wasm_bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$wasm_bindgen_version" ]; then
    echo "ensure-browser: no wasm-bindgen in Cargo.lock" >&2
    return 1 2>/dev/null || exit 1
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "ensure-browser: installing the wasm32-unknown-unknown target with rustup." >&2
    rustup target add wasm32-unknown-unknown >&2 || {
        echo "ensure-browser: 'rustup target add wasm32-unknown-unknown' failed." >&2
        return 1 2>/dev/null || exit 1
    }
fi

runner_version() {
    wasm-bindgen-test-runner --version 2>/dev/null | awk '{ print $2 }'
}
if [ "$(runner_version)" != "$wasm_bindgen_version" ]; then
    echo "ensure-browser: installing wasm-bindgen-cli $wasm_bindgen_version (wasm-bindgen-test-runner; found: '$(runner_version)'); this compiles for a few minutes, once." >&2
    # --locked first (the versions wasm-bindgen released with); a registry that no longer
    # serves one of them (a yanked crate) gets the newest compatible ones instead.
    if ! cargo install wasm-bindgen-cli --version "$wasm_bindgen_version" --locked >&2; then
        echo "ensure-browser: the --locked install failed; retrying with the newest compatible dependencies." >&2
        cargo install wasm-bindgen-cli --version "$wasm_bindgen_version" >&2 || {
            echo "ensure-browser: could not install wasm-bindgen-cli $wasm_bindgen_version." >&2
            return 1 2>/dev/null || exit 1
        }
    fi
fi

find_chromium() {
    local c
    for c in chromium chromium-browser google-chrome; do
        command -v "$c" >/dev/null 2>&1 && { command -v "$c"; return 0; }
    done
    return 1
}
if ! find_chromium >/dev/null || ! command -v chromedriver >/dev/null 2>&1; then
    packages="chromium chromium-driver"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ensure-browser: Chromium and chromedriver are missing and apt-get is unavailable; install them (same version) and rerun." >&2
        return 1 2>/dev/null || exit 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        sudo_cmd=""
    elif command -v sudo >/dev/null 2>&1; then
        sudo_cmd="sudo"
    else
        echo "ensure-browser: Chromium is missing. As root, run: apt-get install -y $packages" >&2
        return 1 2>/dev/null || exit 1
    fi
    echo "ensure-browser: Chromium or chromedriver missing: installing $packages with ${sudo_cmd:-root} apt-get." >&2
    apt_lock_timeout="${WGPU_QUANT_APT_LOCK_TIMEOUT:-300}"
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$apt_lock_timeout" update -qq >&2 || true
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$apt_lock_timeout" install -y -qq $packages >&2 || {
        echo "ensure-browser: apt-get install $packages failed." >&2
        return 1 2>/dev/null || exit 1
    }
    if ! find_chromium >/dev/null || ! command -v chromedriver >/dev/null 2>&1; then
        echo "ensure-browser: installed $packages but chromium/chromedriver are still not on PATH." >&2
        return 1 2>/dev/null || exit 1
    fi
fi

export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
BROWSER_SUITE_READY=1
