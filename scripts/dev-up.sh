#!/usr/bin/env bash
# Start everything for local development: Postgres and Redis, then the customer, scoring and
# campaign services. Every TIERLINE_* setting below can be overridden from the environment.
# Ctrl-C stops the services.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "==> Ensuring Postgres and Redis are running"
bash scripts/ensure-services.sh

# The local admin connection (the role ensure-services.sh guarantees) creates the app database.
ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres
echo "==> Ensuring database 'tierline' exists"
psql -w "$ADMIN_URL" -tc "SELECT 1 FROM pg_database WHERE datname='tierline'" | grep -q 1 \
    || psql -w "$ADMIN_URL" -c "CREATE DATABASE tierline"

# One database, one schema per service (customer, scoring, campaign): each service owns its own.
export TIERLINE_DATABASE_URL="${TIERLINE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tierline}"
export TIERLINE_AUTH_MODE="${TIERLINE_AUTH_MODE:-disabled}"
export TIERLINE_REDIS_URL="${TIERLINE_REDIS_URL:-redis://127.0.0.1:6379}"
CUSTOMER_ADDR="${CUSTOMER_ADDR:-127.0.0.1:50051}"
SCORING_ADDR="${SCORING_ADDR:-127.0.0.1:50052}"
CAMPAIGN_ADDR="${CAMPAIGN_ADDR:-127.0.0.1:50053}"

if [[ "$TIERLINE_AUTH_MODE" == disabled ]]; then
    echo "==> Auth is OFF (TIERLINE_AUTH_MODE=disabled) for local use; to turn it on, set"
    echo "    TIERLINE_AUTH_MODE=jwt and TIERLINE_AUTH_HS256_SECRET (at least 32 bytes), and give the"
    echo "    scoring service a feed:read token in TIERLINE_CUSTOMER_TOKEN (and the campaign service"
    echo "    its tokens: see docs/CONFIGURATION.md#campaign-service)"
fi

echo "==> Building the services"
cargo build -p tierline-customer -p tierline-scoring -p tierline-campaign

TIERLINE_GRPC_ADDR="$CUSTOMER_ADDR" TIERLINE_METRICS_ADDR="${CUSTOMER_METRICS_ADDR:-127.0.0.1:9151}" \
    target/debug/tierline-customer &
customer_pid=$!
TIERLINE_GRPC_ADDR="$SCORING_ADDR" TIERLINE_METRICS_ADDR="${SCORING_METRICS_ADDR:-127.0.0.1:9152}" \
    TIERLINE_CUSTOMER_ENDPOINT="http://$CUSTOMER_ADDR" target/debug/tierline-scoring &
scoring_pid=$!
TIERLINE_GRPC_ADDR="$CAMPAIGN_ADDR" TIERLINE_METRICS_ADDR="${CAMPAIGN_METRICS_ADDR:-127.0.0.1:9153}" \
    TIERLINE_CUSTOMER_ENDPOINT="http://$CUSTOMER_ADDR" TIERLINE_SCORING_ENDPOINT="http://$SCORING_ADDR" \
    target/debug/tierline-campaign &
campaign_pid=$!
trap 'kill -TERM "$customer_pid" "$scoring_pid" "$campaign_pid" 2>/dev/null; wait' INT TERM EXIT

echo "==> Customer service: gRPC on $CUSTOMER_ADDR; scoring service: gRPC on $SCORING_ADDR;"
echo "    campaign service: gRPC on $CAMPAIGN_ADDR"
echo "    Try (server reflection is on): grpcurl -plaintext $CUSTOMER_ADDR list"
echo "    Example programs to load: examples/programs/ (see docs/SCORING.md)"
wait -n "$customer_pid" "$scoring_pid" "$campaign_pid"
