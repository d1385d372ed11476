#!/usr/bin/env bash
# GPU numbers: the face pipeline per stage and the dense path natively, on burn's CPU backend and
# on wgpu (Vulkan on a real GPU; lavapipe on a machine without one), then, where this machine's
# Chromium offers a hardware WebGPU adapter, the same-page browser benchmark.
#
#   scripts/bench-gpu.sh                 # builds what is missing, then measures
#   scripts/bench-gpu.sh --pack DIR      # builds and copies what a bare GPU machine needs into DIR
#                                        # (the example binary, the models, the clip as raw frames)
#   DIR/run.sh                           # on that machine: the native measurements only
#
# CUBECL_WGPU_DEFAULT_DEVICE picks the wgpu adapter where there are several.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

. scripts/vulkan-loader.sh
CLIP=assets/sample.mp4
MODELS=node_modules/@vladmandic/face-api/model
cargo build --release --example bench_dense --example decode_frames
BIN=target/release/examples/bench_dense

if [ "${1:-}" = "--pack" ]; then
  dir=${2:?--pack DIR}
  mkdir -p "$dir/models"
  # Compressed: the whole folder travels to the GPU machine (a few tens of MB at most).
  strip -o "$dir/bench_dense" "$BIN" && gzip -f -1 "$dir/bench_dense"
  pack_vulkan_loader "$dir"
  cp "$MODELS"/tiny_face_detector_model* "$MODELS"/face_landmark_68_model* "$MODELS"/face_expression_model* "$dir/models/"
  size=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 "$CLIP")
  target/release/examples/decode_frames "$CLIP" | gzip -1 > "$dir/frames.rgb.gz"
  cat > "$dir/run.sh" <<EOF
#!/usr/bin/env bash
# Native GPU benchmark on a bare machine (made by scripts/bench-gpu.sh --pack).
set -e
$(vulkan_loader_fallback)
cd "\$here"
tmp=\$(mktemp -d)
gunzip -c bench_dense.gz > "\$tmp/bench_dense" && chmod +x "\$tmp/bench_dense"
gunzip -c frames.rgb.gz > "\$tmp/frames.rgb"
"\$tmp/bench_dense" --rgb "\$tmp/frames.rgb" --size $size --models models --backends "\${BACKENDS:-cpu,wgpu}" --repeat "\${REPEAT:-10}"
EOF
  chmod +x "$dir/run.sh"
  echo "bench-gpu: packed into $dir ($(du -sh "$dir" | cut -f1))"
  exit 0
fi

"$BIN" "$CLIP" --backends cpu,wgpu --repeat 10
if [ -f pkg/emolens.js ]; then
  node tests/browser/bench.mjs --no-live
else
  echo "bench-gpu: pkg/ missing (scripts/build-wasm.sh): browser benchmark skipped"
fi
