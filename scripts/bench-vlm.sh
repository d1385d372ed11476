#!/usr/bin/env bash
# The local VLM at real size: SmolVLM-256M/500M-Instruct checkpoints with seeded random weights
# (examples/bench_vlm.rs synth: no download), then load time, memory, time to first token on the
# bundled clip's enriched prompt (4 keyframes, `emolens prompt`) and decode tokens/s.
#
#   scripts/bench-vlm.sh                 # here, on the CPU: 256M f32 (checkpoint in target/vlm-bench)
#   scripts/bench-vlm.sh --pack DIR      # what a bare Linux x86-64 GPU machine needs, into DIR:
#                                        # the gzipped benchmark binary, the prompt and run.sh
#   DIR/run.sh                           # there: synthesises each checkpoint, benchmarks it on
#                                        # wgpu (Vulkan), then 256M on the CPU; under 5 minutes
#
# run.sh takes MODELS ("256m 500m"), DTYPES ("f32 f16"), TOKENS (32), REPEAT (3), CPU (1: also
# the CPU run), STEP_TIMEOUT (seconds per benchmark, 100) and WORK (where checkpoints go: a fresh
# temporary folder, removed at the end). CUBECL_WGPU_DEFAULT_DEVICE picks the wgpu adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

CLIP=assets/sample.mp4
OUT=target/vlm-bench
cargo build --release --example bench_vlm --bin emolens
BIN=target/release/examples/bench_vlm
mkdir -p "$OUT"
# The project's prompt builder on the bundled clip (face models from node_modules, ffmpeg).
target/release/emolens prompt "$CLIP" > "$OUT/prompt.json"

if [ "${1:-}" = "--pack" ]; then
  dir=${2:?--pack DIR}
  mkdir -p "$dir"
  strip -o "$dir/bench_vlm" "$BIN" && gzip -f -1 "$dir/bench_vlm"
  cp "$OUT/prompt.json" "$dir/prompt.json"
  cat > "$dir/run.sh" <<'EOF'
#!/usr/bin/env bash
# SmolVLM at real size on a bare GPU machine (made by scripts/bench-vlm.sh --pack).
set -u
here=$(cd "$(dirname "$0")" && pwd)
work=${WORK:-$(mktemp -d)}
[ -n "${WORK:-}" ] || trap 'rm -rf "$work"' EXIT
gunzip -c "$here/bench_vlm.gz" > "$work/bench_vlm" && chmod +x "$work/bench_vlm"
B="$work/bench_vlm"
T=${TOKENS:-32}
R=${REPEAT:-3}
S=${STEP_TIMEOUT:-100}
echo "run.sh: $(date -u +%H:%M:%S) $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
for m in ${MODELS:-256m 500m}; do
  for d in ${DTYPES:-f32 f16}; do
    ck="$work/smolvlm-$m-$d"
    "$B" synth --model "$m" --dtype "$d" --out "$ck" || { echo "run.sh: synth $m $d failed"; continue; }
    # f32: SmolVLM's own image splitting (up to 4×4 tiles + 1 per keyframe) and one tile per
    # keyframe; f16 (same weights on the device, converted at load): load time, one layout.
    split=both; [ "$d" = f32 ] || split=off
    timeout "$S" "$B" "$ck" --backend wgpu --prompt "$here/prompt.json" --split "$split" \
      --tokens "$T" --repeat "$R" || echo "run.sh: $m $d on wgpu failed or passed ${S} s (exit $?)"
    if [ "${CPU:-1}" = 1 ] && [ "$m" = 256m ] && [ "$d" = f32 ]; then
      timeout "$S" "$B" "$ck" --backend cpu --prompt "$here/prompt.json" --split off \
        --tokens 16 --repeat 2 || echo "run.sh: $m $d on the CPU failed or passed ${S} s (exit $?)"
    fi
    rm -rf "$ck"
  done
done
echo "run.sh: done $(date -u +%H:%M:%S)"
EOF
  chmod +x "$dir/run.sh"
  echo "bench-vlm: packed into $dir ($(du -sh "$dir" | cut -f1))"
  exit 0
fi

ck="$OUT/smolvlm-256m-f32"
[ -f "$ck/model.safetensors" ] || "$BIN" synth --model 256m --dtype f32 --out "$ck"
"$BIN" "$ck" --backend cpu --prompt "$OUT/prompt.json" --split off --tokens 32 --repeat 2
