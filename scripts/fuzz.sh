#!/usr/bin/env bash
# Long fuzz run of every parser target in tests/fuzz.rs (the test suite runs a few thousand
# inputs each; this runs ITERS, default one million, per target).
#
#   scripts/fuzz.sh [ITERS] [SEED]
#
# Prints "fuzz <target>: N inputs in T s, K crash(es)" per target; crashing inputs are saved in
# target/fuzz-crashes/ and make the run fail. Stable Rust only (no cargo-fuzz, no nightly).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export EMOLENS_FUZZ_ITERS=${1:-1000000}
export EMOLENS_FUZZ_SEED=${2:-$(date +%s)}
rm -rf target/fuzz-crashes
echo "fuzzing with $EMOLENS_FUZZ_ITERS inputs per target, seed $EMOLENS_FUZZ_SEED"
cargo test --release --test fuzz -- --nocapture --test-threads 1 2>&1 | grep -oE 'fuzz [a-z-]+: .*|panicked at .*|test result.*|crashing.*'
