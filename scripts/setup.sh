#!/usr/bin/env bash
# One-time (idempotent) setup of a Debian 12 machine for emolens' wasm build, demo and browser tests.
# Run as root (or with sudo available) on a machine that has rustup + cargo, Node.js 20 and npm.
#
#   scripts/setup.sh
#
# Installs: Debian chromium + chromium-driver (headless browser tests; never a downloaded browser),
# ffmpeg, mesa-vulkan-drivers; the rustup target wasm32-unknown-unknown; the wasm build's pinned
# nightly with rust-src and that target, and wasm-bindgen-cli (both in scripts/wasm-toolchain.sh);
# the npm packages (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-toolchain.sh

export PATH="$HOME/.cargo/bin:$PATH"
stamp() { echo "[setup $(date +%H:%M:%S)] $*"; }

SUDO=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; fi
fi

# --- Debian packages -------------------------------------------------------------------------
pkgs=(chromium chromium-driver ffmpeg mesa-vulkan-drivers)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  stamp "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y "${missing[@]}"
else
  stamp "Debian packages present: ${pkgs[*]}"
fi

# --- Rust wasm target + wasm-bindgen-cli -------------------------------------------------------
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  stamp "rustup target wasm32-unknown-unknown present"
else
  stamp "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The shipped wasm is built with a pinned nightly's build-std (scripts/wasm-toolchain.sh says why).
if wasm_nightly_ready; then
  stamp "toolchain $WASM_NIGHTLY with rust-src and wasm32-unknown-unknown present"
else
  stamp "rustup toolchain install $WASM_NIGHTLY (minimal, rust-src, wasm32-unknown-unknown)"
  rustup toolchain install "$WASM_NIGHTLY" --profile minimal --component rust-src --target wasm32-unknown-unknown
fi

if command -v wasm-bindgen >/dev/null && [ "$(wasm-bindgen --version | awk '{print $2}')" = "$WASM_BINDGEN_VERSION" ]; then
  stamp "wasm-bindgen $WASM_BINDGEN_VERSION present"
else
  stamp "cargo install wasm-bindgen-cli --version $WASM_BINDGEN_VERSION (takes a few minutes)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# --- npm packages -------------------------------------------------------------------------------
# npm ci wipes node_modules; skip it when node_modules already matches package-lock.json.
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
   && [ -x node_modules/.bin/webpack ] && [ -x node_modules/.bin/tsc ] && [ -d node_modules/playwright-core ] \
   && [ -z "${FORCE_NPM_CI:-}" ]; then
  stamp "node_modules up to date with package-lock.json (FORCE_NPM_CI=1 to reinstall)"
else
  stamp "npm ci"
  npm ci --no-audit --no-fund
fi

stamp "done: $(wasm-bindgen --version), $(node --version), $(/usr/bin/chromium --version 2>/dev/null | head -1)"
