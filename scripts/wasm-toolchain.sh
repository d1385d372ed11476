# The wasm build's pinned tools, sourced by scripts/setup.sh (installs them) and
# scripts/build-wasm.sh (checks and uses them).
#
# wasm-bindgen-cli must match Cargo.toml's `wasm-bindgen = "=…"` pin.
WASM_BINDGEN_VERSION=0.2.130
# The shipped wasm modules are built with this nightly's `-Z build-std` (the standard library
# rebuilt at the profile's opt-level z) and `-Z location-detail=none` (no file:line:column
# table for panics): the face package 2.62 → 2.48 MB gzipped at the same CPU speed. Dated, so a
# new nightly cannot change the build; `EMOLENS_WASM_STABLE=1 scripts/build-wasm.sh` builds the
# same modules with the stable toolchain instead (larger; its size is not checked).
WASM_NIGHTLY=nightly-2026-05-20

# Whether that nightly is installed with what build-std needs: rust-src and the wasm32 target.
wasm_nightly_ready() {
  local sysroot
  sysroot=$(rustup run "$WASM_NIGHTLY" rustc --print sysroot 2>/dev/null) || return 1
  [ -d "$sysroot/lib/rustlib/src/rust/library" ] && [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown" ]
}
