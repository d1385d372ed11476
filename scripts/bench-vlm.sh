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
# 256M f32 on the CPU), STEP_TIMEOUT (seconds per benchmark, 100), BUDGET (seconds for the whole
# run, 280) and WORK (where checkpoints go: a fresh temporary folder, removed at the end).
# CUBECL_WGPU_DEFAULT_DEVICE picks the wgpu adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

. scripts/vulkan-loader.sh
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
  pack_vulkan_loader "$dir"
  { cat <<'EOF'
#!/usr/bin/env bash
# SmolVLM at real size on a bare GPU machine (made by scripts/bench-vlm.sh --pack): each
# checkpoint is synthesised here (seeded random weights), measured, then deleted. Every step has a
# timeout and the whole run stops within BUDGET seconds (default 280).
set -u
EOF
  vulkan_loader_fallback
  cat <<'EOF'
work=${WORK:-$(mktemp -d)}
[ -n "${WORK:-}" ] || trap 'rm -rf "$work"' EXIT
gunzip -c "$here/bench_vlm.gz" > "$work/bench_vlm" && chmod +x "$work/bench_vlm"
B="$work/bench_vlm"
T=${TOKENS:-32}
R=${REPEAT:-3}
S=${STEP_TIMEOUT:-100}
deadline=$(( $(date +%s) + ${BUDGET:-280} ))
# Seconds the next step may take: STEP_TIMEOUT, or what is left of the budget.
left() { local l=$(( deadline - $(date +%s) )); [ "$l" -gt "$S" ] && l=$S; echo "$l"; }
echo "run.sh: $(date -u +%H:%M:%S) $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
bench() { # checkpoint backend weights split tokens repeat
  local l; l=$(left)
  if [ "$l" -lt 20 ]; then echo "run.sh: out of time, skipped $1 $2"; return; fi
  timeout "$l" "$B" "$1" --backend "$2" --weights "$3" --split "$4" --prompt "$here/prompt.json" \
    --tokens "$5" --repeat "$6" || { local rc=$?; echo "run.sh: $(basename "$1") $2 $3 failed or passed $l s (exit $rc)"; }
}
for m in ${MODELS:-256m 500m}; do
  for d in ${DTYPES:-f32 f16}; do
    [ "$(left)" -ge 20 ] || { echo "run.sh: out of time, skipped $m $d"; continue; }
    ck="$work/smolvlm-$m-$d"
    "$B" synth --model "$m" --dtype "$d" --out "$ck" || { echo "run.sh: synth $m $d failed"; continue; }
    # f32 file: f32 weights, SmolVLM's own image splitting and one tile per keyframe (then 256M
    # with q8 matrices and on the CPU); f16 file: the linear layers' matrices kept in f16 on the
    # device, one tile per keyframe.
    if [ "$d" = f32 ]; then
      bench "$ck" wgpu f32 both "$T" "$R"
      # 8-bit matrices (quantized at load) on the smaller model only.
      [ "$m" = 256m ] && bench "$ck" wgpu q8 off "$T" "$R"
      [ "${CPU:-1}" = 1 ] && [ "$m" = 256m ] && bench "$ck" cpu f32 off 16 2
    else
      bench "$ck" wgpu f16 off "$T" "$R"
    fi
    rm -rf "$ck"
  done
done
echo "run.sh: done $(date -u +%H:%M:%S)"
EOF
  } > "$dir/run.sh"
  chmod +x "$dir/run.sh"
  echo "bench-vlm: packed into $dir ($(du -sh "$dir" | cut -f1))"
  exit 0
fi

ck="$OUT/smolvlm-256m-f32"
[ -f "$ck/model.safetensors" ] || "$BIN" synth --model 256m --dtype f32 --out "$ck"
"$BIN" "$ck" --backend cpu --prompt "$OUT/prompt.json" --split off --tokens 32 --repeat 2
