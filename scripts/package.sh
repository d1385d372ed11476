#!/usr/bin/env bash
# Turns pkg/ (wasm-bindgen's output, from scripts/build-wasm.sh) into the npm package `emolens`:
# the package.json, README and typed API (index.d.ts) kept in package/, the licence, and the face
# models under models/ (from the npm package @vladmandic/face-api, MIT).
#
#   scripts/package.sh                  # assemble pkg/ in place
#   scripts/package.sh --pack DIR       # ... and npm pack it into DIR (offline); prints the tarball
#
# The version is Cargo.toml's. Every *.wasm, *.js and *.d.ts in pkg/ is shipped (package.json's
# `files`). `emolens/vlm` (the local VLM's module, emolens_vlm.js) is reached through vlm.js, so
# that a bundler given the folder (webpack's alias) and npm's `exports` find the same file.
set -euo pipefail
cd "$(dirname "$0")/.."

pack_dir=
case "${1:-}" in
  --pack) pack_dir=${2:?--pack needs a directory} ;;
  "") ;;
  *) echo "package: unknown argument $1 (use --pack DIR)" >&2; exit 2 ;;
esac

for f in emolens.js emolens_vlm.js; do
  [ -f "pkg/$f" ] || { echo "package: pkg/$f is missing: run scripts/build-wasm.sh first" >&2; exit 1; }
done
models=node_modules/@vladmandic/face-api/model
[ -d "$models" ] || { echo "package: $models is missing: run npm ci (scripts/setup.sh)" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
VERSION=$version node -e '
  const fs = require("node:fs");
  const pkg = JSON.parse(fs.readFileSync("package/package.json", "utf8"));
  pkg.version = process.env.VERSION;
  fs.writeFileSync("pkg/package.json", JSON.stringify(pkg, null, 2) + "\n");
'
cp package/README.md package/index.d.ts package/vlm.d.ts pkg/
cat > pkg/vlm.js <<'JS'
// emolens/vlm: the local VLM's wasm module (types: vlm.d.ts). Import it when a page loads a VLM;
// its init() fetches emolens_vlm_bg.wasm.
export * from './emolens_vlm.js';
export { default } from './emolens_vlm.js';
JS
cp LICENSE pkg/LICENSE
rm -rf pkg/models
mkdir -p pkg/models
# The three models Analyzer.create fetches from modelBaseUrl (src/face/mod.rs).
for m in tiny_face_detector_model face_landmark_68_model face_expression_model; do
  cp "$models/$m-weights_manifest.json" "$models/$m.bin" pkg/models/
done
cp node_modules/@vladmandic/face-api/LICENSE pkg/models/LICENSE
echo "package: pkg/ is the npm package emolens@$version"

if [ -n "$pack_dir" ]; then
  dest=$(mkdir -p "$pack_dir" && cd "$pack_dir" && pwd)
  tarball=$(cd pkg && npm pack --offline --silent --pack-destination "$dest")
  echo "package: $pack_dir/$tarball ($(du -k "$pack_dir/$tarball" | cut -f1) KiB)"
fi
