#!/usr/bin/env bash
# Checks the package's typed API (package/index.d.ts and package/vlm.d.ts, the local VLM's
# module, copied into pkg/ by scripts/package.sh):
# - it has no `any` (DOM types are used where a DOM object is the truth);
# - tsc --noEmit: tests/types/every-export.ts calls every export with typed options and results,
#   and tests/types/matches-binding.ts fails when pkg/emolens.d.ts (generated from the Rust
#   binding) or pkg/emolens_vlm.d.ts has an export, a class member or a parameter count that
#   index.d.ts or vlm.d.ts lacks, or back.
#
#   scripts/check-types.sh        # after scripts/build-wasm.sh and scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for f in index.d.ts vlm.d.ts emolens.d.ts emolens_vlm.d.ts; do
  [ -f "pkg/$f" ] || { echo "check-types: pkg/$f missing: run scripts/build-wasm.sh (it runs scripts/package.sh)" >&2; exit 1; }
done
for f in index.d.ts vlm.d.ts; do
  cmp -s "package/$f" "pkg/$f" || { echo "check-types: pkg/$f is older than package/$f: run scripts/package.sh" >&2; exit 1; }
  # `any` outside comments.
  if sed -e 's://.*$::' -e 's:/\*.*\*/::g' "package/$f" | grep -nw 'any'; then
    echo "check-types: package/$f uses \`any\` (above)" >&2
    exit 1
  fi
done
node_modules/.bin/tsc -p tests/types/tsconfig.json
echo "check-types: index.d.ts and vlm.d.ts have no any, match the bindings' exports, and every-export.ts type-checks"
