#!/usr/bin/env bash
# Builds the browser package: pkg/emolens.js + pkg/emolens_bg.wasm (wasm-bindgen --target web),
# then the npm package around them (scripts/package.sh).
#
#   scripts/build-wasm.sh            # release build, wasm-opt -O2
#   NO_WASM_OPT=1 scripts/build-wasm.sh   # skip wasm-opt
#
# Needs: rustup target wasm32-unknown-unknown, wasm-bindgen-cli 0.2.130 on PATH (scripts/setup.sh
# installs both), node_modules/.bin/wasm-opt (npm package binaryen; Debian's wasm-opt is broken).
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130
TARGET=wasm32-unknown-unknown
export PATH="$HOME/.cargo/bin:$PATH"

t0=$(date +%s)
if ! command -v wasm-bindgen >/dev/null; then
  echo "build-wasm: wasm-bindgen not found on PATH; run scripts/setup.sh (cargo install wasm-bindgen-cli --version $WASM_BINDGEN_VERSION)" >&2
  exit 1
fi
have=$(wasm-bindgen --version | awk '{print $2}')
if [ "$have" != "$WASM_BINDGEN_VERSION" ]; then
  echo "build-wasm: wasm-bindgen $have on PATH, the crate pins $WASM_BINDGEN_VERSION; run: cargo install wasm-bindgen-cli --version $WASM_BINDGEN_VERSION --force" >&2
  exit 1
fi

# The target's rustflags from .cargo/config.toml (+simd128), for the feature list below.
config_flags=$(sed -n 's/^rustflags = \[\(.*\)\]/\1/p' .cargo/config.toml 2>/dev/null | tr -d '",')
if [ -z "${RUSTFLAGS:-}" ]; then
  echo "build-wasm: wasm target features: $(rustc --print cfg --target "$TARGET" $config_flags | sed -n 's/^target_feature="\(.*\)"$/\1/p' | tr '\n' ' ')"
else
  echo "build-wasm: RUSTFLAGS is set, so cargo ignores .cargo/config.toml's rustflags (add -C target-feature=+simd128 yourself)" >&2
fi
echo "== cargo build --release --lib --target $TARGET"
cargo build --release --lib --target "$TARGET"
# Honour CARGO_TARGET_DIR / build.target-dir (cargo metadata knows where the artifacts go).
target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
raw="$target_dir/$TARGET/release/emolens.wasm"
[ -f "$raw" ] || { echo "build-wasm: $raw was not produced" >&2; exit 1; }

echo "== wasm-bindgen --target web --out-dir pkg"
rm -rf pkg
wasm-bindgen --target web --out-dir pkg "$raw"

if ! grep -q 'class Analyzer' pkg/emolens.js; then
  echo "build-wasm: pkg/emolens.js exports no Analyzer: $raw was not built from this tree's src/web/ (a shared CARGO_TARGET_DIR overwritten by another checkout?)" >&2
  exit 1
fi

wasm=pkg/emolens_bg.wasm
if [ -n "${NO_WASM_OPT:-}" ]; then
  echo "== wasm-opt skipped (NO_WASM_OPT set)"
else
  # Enable exactly the wasm features rustc targets by default (rustc >= 1.87 turns on
  # bulk-memory, multivalue, mutable-globals, nontrapping-fptoint, reference-types, sign-ext).
  feats=()
  while read -r f; do
    case "$f" in
      nontrapping-fptoint) feats+=(--enable-nontrapping-float-to-int) ;;
      simd128) feats+=(--enable-simd) ;;
      bulk-memory|multivalue|mutable-globals|reference-types|sign-ext|tail-call|extended-const|exception-handling|multimemory|relaxed-simd)
        feats+=(--enable-"$f") ;;
      *) echo "build-wasm: note: target feature '$f' has no wasm-opt flag mapped" >&2 ;;
    esac
  done < <(rustc --print cfg --target "$TARGET" $config_flags ${RUSTFLAGS:-} | sed -n 's/^target_feature="\(.*\)"$/\1/p')
  WASM_OPT=node_modules/.bin/wasm-opt
  echo "== $WASM_OPT -O2 ${feats[*]}"
  if [ -x "$WASM_OPT" ] && "$WASM_OPT" -O2 "${feats[@]}" "$wasm" -o "$wasm.opt"; then
    mv "$wasm.opt" "$wasm"
  else
    rm -f "$wasm.opt"
    echo "build-wasm: WARNING: wasm-opt failed or is missing (npm ci installs binaryen); keeping the unoptimised $wasm" >&2
  fi
fi

size=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
awk -v f="$wasm" -v s="$size" -v g="$gz" \
  'BEGIN { printf "build-wasm: %s  %d bytes (%.2f MiB) raw, %d bytes (%.2f MiB) gzip -9\n", f, s, s / 1048576, g, g / 1048576 }'
# The npm package around it (package.json, typed index.d.ts, models): package/ → pkg/.
scripts/package.sh
echo "build-wasm: done in $(( $(date +%s) - t0 )) s"
