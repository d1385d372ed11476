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

if [ -f assets/sample.mp4 ]; then
  # What the demo's "Analyse whole clip" shows for the bundled clip, from the native CLI.
  stamp "the bundled clip's analysis: emolens video assets/sample.mp4"
  cargo build --release --bin emolens
  emolens=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')/release/emolens
  "$emolens" video assets/sample.mp4
  stamp "its VLM prompt, tokens per mode: emolens prompt --mode MODE assets/sample.mp4"
  # The modes as the CLI lists them (--mode's possible values).
  modes=$("$emolens" prompt --help | awk '/--mode/ { m = 1 } m && /possible values/ { gsub(/.*possible values: |\]|,/, ""); print; exit }')
  for mode in $modes; do
    "$emolens" prompt --mode "$mode" assets/sample.mp4 2>/dev/null | MODE=$mode node -e '
      let s = "";
      process.stdin.on("data", (d) => (s += d)).on("end", () => {
        const p = JSON.parse(s);
        const t = p.requests[0].tokens;
        console.log(`  ${process.env.MODE.padEnd(10)} ${String(t.total).padStart(5)} tokens (text ${t.text_tokens}, ${t.images} image(s) ${t.image_tokens}); every frame as an image: ${p.all_frames_image_tokens}`);
      });'
  done
else
  echo "demo: WARNING: assets/sample.mp4 is missing; skipping the CLI run" >&2
fi

stamp "serving the demo on http://127.0.0.1:$PORT/ (Ctrl-C to stop)"
PORT=$PORT exec node scripts/serve.js www/dist
