#!/usr/bin/env bash
# The project's test command: native tests, wasm build, demo build, browser test.
#
#   scripts/test.sh
#
# cargo test --release runs the native tests, which also write target/parity/*.png and
# target/parity/native.json; tests/browser/run.mjs then compares the wasm build in headless
# Chromium (WebGPU and CPU) with those native results. scripts/package.sh (run by build-wasm.sh) makes pkg/ the npm
# package (scripts/check-types.sh checks its typed API); tests/browser/demo.mjs runs the built demo
# on the bundled clip (plot, events, prompt tokens, download, no console error);
# tests/browser/package.mjs installs the packed tarball into a scratch webpack project and runs it.
# tests/browser/remote.mjs runs the remote VLM client in Chromium against the fake server that
# cargo test built (examples/fake_vlm_server);
# tests/browser/vlm.mjs runs the local VLM there (parity with transformers' reference outputs,
# loading, generation, timings, the demo's VLM panel); tests/browser/video.mjs analyses the
# clips in Chromium (file and live) and compares them with the native CLI; tests/browser/bench.mjs
# prints the same-page benchmark against face-api.js (and checks parity and tracking).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

T0=$(date +%s)
step() {
  local name=$1
  shift
  local t=$(date +%s)
  echo
  echo "=== [$(date -u +%H:%M:%S)] $name"
  "$@"
  echo "=== [$(date -u +%H:%M:%S)] $name: ok in $(( $(date +%s) - t )) s (total $(( $(date +%s) - T0 )) s)"
}

step "native tests (cargo test --release)" cargo test --release
# Both wasm modules, as shipped; it fails when the face package passes its size budget
# (scripts/check-size.sh).
step "wasm build (scripts/build-wasm.sh)" scripts/build-wasm.sh
step "typed API (scripts/check-types.sh)" scripts/check-types.sh
step "demo build (webpack --mode production)" node_modules/.bin/webpack --mode production
step "demo end to end (tests/browser/demo.mjs)" node tests/browser/demo.mjs
step "npm package in a scratch webpack project (tests/browser/package.mjs)" node tests/browser/package.mjs
step "browser test (tests/browser/run.mjs)" node tests/browser/run.mjs
step "browser remote VLM client (tests/browser/remote.mjs)" node tests/browser/remote.mjs
step "browser VLM test (tests/browser/vlm.mjs)" node tests/browser/vlm.mjs
step "browser video test (tests/browser/video.mjs)" node tests/browser/video.mjs
step "same-page benchmark against face-api.js (tests/browser/bench.mjs)" node tests/browser/bench.mjs --gpu-frames 2
echo
echo "=== all steps passed in $(( $(date +%s) - T0 )) s"
