#!/usr/bin/env bash
# Builds the browser demo and benchmark (web/demo): the wasm in release mode, then
# wasm-bindgen's JavaScript bindings into web/demo/pkg (gitignored). The digits model and
# test data are compiled into the wasm, so the page fetches nothing else.
#
# Needs the wasm32 target (`rustup target add wasm32-unknown-unknown`) and the wasm-bindgen
# CLI of the exact version in Cargo.lock (`cargo install wasm-bindgen-cli --version V --locked`).
# Serve: python3 -m http.server -d web/demo 8000, then open http://localhost:8000/ (demo)
# and http://localhost:8000/bench.html (benchmark) in a browser with WebGPU.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if ! command -v wasm-bindgen > /dev/null; then
    echo "build-demo: wasm-bindgen not found; install it with:" >&2
    echo "  cargo install wasm-bindgen-cli --version $want --locked" >&2
    exit 1
fi
have=$(wasm-bindgen --version | awk '{ print $2 }')
if [ "$have" != "$want" ]; then
    echo "build-demo: wasm-bindgen $have, but Cargo.lock has wasm-bindgen $want; install it with:" >&2
    echo "  cargo install wasm-bindgen-cli --version $want --locked" >&2
    exit 1
fi

cargo build --release --target wasm32-unknown-unknown -p wgpu-quant-demo
rm -rf web/demo/pkg
wasm-bindgen --target web --no-typescript --out-dir web/demo/pkg \
    target/wasm32-unknown-unknown/release/wgpu_quant_demo.wasm
echo "build-demo: web/demo/pkg ready ($(du -h web/demo/pkg/wgpu_quant_demo_bg.wasm | cut -f1) of wasm)"
echo "build-demo: serve it with: python3 -m http.server -d web/demo 8000"
