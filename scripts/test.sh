#!/usr/bin/env bash
# Runs the whole test suite against local Postgres/Redis (started on demand).
# Formatting and lints are deliberately not part of this script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# CI logs are plain text: ANSI colours only add noise there.
# Incremental caches only help a rebuild, which CI never does, and cost gigabytes of disk.
if [[ "${CI:-}" == true ]]; then
    export CARGO_TERM_COLOR=never
    export CARGO_INCREMENTAL=0
fi

start=$SECONDS

echo "==> Ensuring Postgres and Redis are running"
bash scripts/ensure-services.sh

# --locked: fail rather than silently update Cargo.lock. Building --all-targets first keeps
# benches compiling (they cannot rot) without running them: benchmarks are programs that print
# figures (docs/BENCHMARKS.md), not tests.
echo "==> cargo test --workspace --all-targets --no-run --locked"
status=0
cargo test --workspace --all-targets --no-run --locked || status=$?
if [[ $status -eq 0 ]]; then
    echo "==> cargo test --workspace --locked"
    cargo test --workspace --locked || status=$?
fi

elapsed=$((SECONDS - start))
echo "==> Finished in $((elapsed / 60))m $((elapsed % 60))s (exit status $status)"
exit "$status"
