#!/usr/bin/env bash
# Runs the whole test suite against local Postgres/Redis (started on demand).
# Formatting and lints are deliberately not part of this script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# CI logs are plain text: ANSI colours only add noise there.
if [[ "${CI:-}" == true ]]; then export CARGO_TERM_COLOR=never; fi

start=$SECONDS

echo "==> Ensuring Postgres and Redis are running"
bash scripts/ensure-services.sh

# --locked: fail rather than silently update Cargo.lock. --all-targets also builds
# examples and benches, so they cannot rot. Test threads are left at cargo's default.
echo "==> cargo test --workspace --all-targets --locked"
status=0
cargo test --workspace --all-targets --locked || status=$?

elapsed=$((SECONDS - start))
echo "==> Finished in $((elapsed / 60))m $((elapsed % 60))s (exit status $status)"
exit "$status"
