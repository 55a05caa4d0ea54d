#!/usr/bin/env bash
# "Start everything that exists so far" for local development: Postgres, Redis and the
# customer service. Every TIERLINE_* setting below can be overridden from the environment.
# The scoring and campaign services will be started here too once they exist.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "==> Ensuring Postgres and Redis are running"
bash scripts/ensure-services.sh

# The local admin connection (the role ensure-services.sh guarantees) creates the app database.
ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres
echo "==> Ensuring database 'tierline' exists"
psql -w "$ADMIN_URL" -tc "SELECT 1 FROM pg_database WHERE datname='tierline'" | grep -q 1 \
    || psql -w "$ADMIN_URL" -c "CREATE DATABASE tierline"

export TIERLINE_DATABASE_URL="${TIERLINE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tierline}"
export TIERLINE_AUTH_MODE="${TIERLINE_AUTH_MODE:-disabled}"
export TIERLINE_GRPC_ADDR="${TIERLINE_GRPC_ADDR:-127.0.0.1:50051}"
export TIERLINE_METRICS_ADDR="${TIERLINE_METRICS_ADDR:-127.0.0.1:9151}"

if [[ "$TIERLINE_AUTH_MODE" == disabled ]]; then
    echo "==> Auth is OFF (TIERLINE_AUTH_MODE=disabled) for local use; to turn it on, set"
    echo "    TIERLINE_AUTH_MODE=jwt and TIERLINE_AUTH_HS256_SECRET (at least 32 bytes)"
fi
echo "==> Customer service: gRPC on $TIERLINE_GRPC_ADDR, metrics on $TIERLINE_METRICS_ADDR"
echo "    Try (server reflection is on): grpcurl -plaintext $TIERLINE_GRPC_ADDR list"

echo "==> cargo run -p tierline-customer"
exec cargo run -p tierline-customer --
