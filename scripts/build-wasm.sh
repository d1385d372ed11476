#!/usr/bin/env bash
# Builds the browser package's two wasm modules (cargo profile `wasm`, wasm-bindgen --target web),
# then the npm package around them (scripts/package.sh):
#   pkg/emolens.js + emolens_bg.wasm          the page's: face analysis, timeline, prompt, remote
#                                             client (features `page`); its size has a budget
#                                             (scripts/check-size.sh)
#   pkg/emolens_vlm.js + emolens_vlm_bg.wasm  the local VLM's (features `vlm`), `emolens/vlm`,
#                                             fetched only when a page loads a VLM
#
#   scripts/build-wasm.sh
#
# The toolchain is the pinned nightly of scripts/wasm-toolchain.sh, with `-Z build-std` and
# `-Z location-detail=none` (why: there); `EMOLENS_WASM_STABLE=1` builds with stable instead.
# No wasm-opt: on the face module -Oz took 3.7 min and made the gzip 3.6 % larger (3.00 → 3.11
# MB), as the profile's opt-level z + fat LTO had done its work. The name section is dropped
# (7.5 MB raw): stack traces then show function indices.
#
# Needs what scripts/setup.sh installs: that nightly with rust-src and the wasm32 target,
# wasm-bindgen-cli on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-toolchain.sh

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

# The target's rustflags from .cargo/config.toml (+simd128); the nightly build passes them with
# its own through RUSTFLAGS, which replaces the config's.
config_flags=$(sed -n 's/^rustflags = \[\(.*\)\]/\1/p' .cargo/config.toml 2>/dev/null | tr -d '",')
if [ -n "${RUSTFLAGS:-}" ]; then
  echo "build-wasm: RUSTFLAGS is set ($RUSTFLAGS): unset it; the build sets its own flags" >&2
  exit 1
fi
if [ -n "${EMOLENS_WASM_STABLE:-}" ]; then
  toolchain=stable
  cargo_build=(cargo build)
else
  toolchain=$WASM_NIGHTLY
  if ! wasm_nightly_ready; then
    echo "build-wasm: toolchain $WASM_NIGHTLY with rust-src and the wasm32 target is not installed; run scripts/setup.sh (or EMOLENS_WASM_STABLE=1 for a larger stable build)" >&2
    exit 1
  fi
  cargo_build=(cargo "+$WASM_NIGHTLY" build -Z build-std=std,panic_abort)
  export RUSTFLAGS="$config_flags -Z location-detail=none"
fi
echo "build-wasm: toolchain $toolchain ($(rustup run "$toolchain" rustc --version)), wasm target features: $(rustup run "$toolchain" rustc --print cfg --target "$TARGET" $config_flags | sed -n 's/^target_feature="\(.*\)"$/\1/p' | tr '\n' ' ')"
# Honour CARGO_TARGET_DIR / build.target-dir (cargo metadata knows where the artifacts go).
target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
raw="$target_dir/$TARGET/wasm/emolens.wasm"

# build_module FEATURES NAME CLASS: cargo → wasm-bindgen (pkg/NAME.js, NAME_bg.wasm).
build_module() {
  local features=$1 name=$2 class=$3
  echo "== ${cargo_build[*]} --profile wasm --lib --target $TARGET --no-default-features --features $features"
  rm -f "$raw"
  "${cargo_build[@]}" --profile wasm --lib --target "$TARGET" --no-default-features --features "$features"
  [ -f "$raw" ] || { echo "build-wasm: $raw was not produced" >&2; exit 1; }
  echo "== wasm-bindgen --target web --out-dir pkg --out-name $name"
  wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir pkg --out-name "$name" "$raw"
  if ! grep -q "class $class" "pkg/$name.js"; then
    echo "build-wasm: pkg/$name.js exports no $class: $raw was not built from this tree's src/ (a shared CARGO_TARGET_DIR overwritten by another checkout?)" >&2
    exit 1
  fi
}

rm -rf pkg
build_module page emolens Analyzer
build_module vlm emolens_vlm LocalVlm
for wasm in pkg/emolens_bg.wasm pkg/emolens_vlm_bg.wasm; do
  size=$(stat -c %s "$wasm")
  gz=$(gzip -9 -c "$wasm" | wc -c)
  awk -v f="$wasm" -v s="$size" -v g="$gz" \
    'BEGIN { printf "build-wasm: %-24s %9d bytes (%.2f MiB) raw, %8d bytes (%.2f MiB) gzip -9\n", f, s, s / 1048576, g, g / 1048576 }'
done
# The npm package around them (package.json, typed index.d.ts and vlm.d.ts, models): package/ → pkg/.
scripts/package.sh
if [ -n "${EMOLENS_WASM_STABLE:-}" ]; then
  echo "build-wasm: stable build: the size budget is for the nightly build and is not checked here"
else
  scripts/check-size.sh
fi
echo "build-wasm: done in $(( $(date +%s) - t0 )) s"
