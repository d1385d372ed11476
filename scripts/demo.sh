#!/usr/bin/env bash
# Builds everything and serves the browser demo.
#
#   scripts/demo.sh            # then open http://127.0.0.1:8080 (PORT env to change)
#   SKIP_SETUP=1 scripts/demo.sh   # skip scripts/setup.sh (apt, wasm-bindgen-cli, npm ci)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
PORT=${PORT:-8080}

stamp() { echo; echo "=== [$(date -u +%H:%M:%S)] $*"; }

if [ -z "${SKIP_SETUP:-}" ]; then
  stamp "setup (scripts/setup.sh)"
  scripts/setup.sh
fi

stamp "wasm build (scripts/build-wasm.sh)"
scripts/build-wasm.sh

stamp "demo build (webpack --mode production)"
node_modules/.bin/webpack --mode production

[ -f assets/sample.mp4 ] || echo "demo: WARNING: assets/sample.mp4 is missing; the demo's 'sample clip' input will show an error" >&2

stamp "native CLI on the bundled photo: emolens image assets/sample.jpg"
if [ -f assets/sample.jpg ]; then
  cargo run --release --bin emolens -- image assets/sample.jpg
else
  echo "demo: WARNING: assets/sample.jpg is missing; skipping the CLI run" >&2
fi

stamp "serving the demo on http://127.0.0.1:$PORT/ (Ctrl-C to stop)"
PORT=$PORT exec node scripts/serve.js www/dist
