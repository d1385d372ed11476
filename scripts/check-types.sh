#!/usr/bin/env bash
# Checks the package's typed API (package/index.d.ts, copied into pkg/ by scripts/package.sh):
# - it has no `any` (DOM types are used where a DOM object is the truth);
# - tsc --noEmit: tests/types/every-export.ts calls every export with typed options and results,
#   and tests/types/matches-binding.ts fails when pkg/emolens.d.ts (generated from the Rust
#   binding) has an export, a class member or a parameter count that index.d.ts lacks, or back.
#
#   scripts/check-types.sh        # after scripts/build-wasm.sh and scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f pkg/index.d.ts ] && [ -f pkg/emolens.d.ts ] || { echo "check-types: pkg/index.d.ts or pkg/emolens.d.ts missing: run scripts/build-wasm.sh and scripts/package.sh" >&2; exit 1; }
cmp -s package/index.d.ts pkg/index.d.ts || { echo "check-types: pkg/index.d.ts is older than package/index.d.ts: run scripts/package.sh" >&2; exit 1; }

# `any` outside comments.
if sed -e 's://.*$::' -e 's:/\*.*\*/::g' package/index.d.ts | grep -nw 'any'; then
  echo "check-types: package/index.d.ts uses \`any\` (above)" >&2
  exit 1
fi
node_modules/.bin/tsc -p tests/types/tsconfig.json
echo "check-types: index.d.ts has no any, matches the binding's exports, and every-export.ts type-checks"
