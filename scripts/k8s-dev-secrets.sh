#!/usr/bin/env bash
# Creates the Secrets the dev overlay references, with random values (nothing secret is ever
# committed). Run once per laptop cluster, before scripts/k8s-deploy.sh k8s/overlays/dev. Existing
# Secrets are kept: the dev Postgres already knows its password.
set -euo pipefail
namespace="${1:-tierline-dev}"
random() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
if kubectl get secret --namespace "$namespace" tierline-postgres >/dev/null 2>&1; then
    echo "Secrets already exist in $namespace; kept."
    exit 0
fi
password="$(random)"
database_url="postgres://postgres:$password@tierline-postgres:5432/tierline"
secret() {
    local name="$1"
    shift
    kubectl create secret generic "$name" --namespace "$namespace" "$@" \
        --dry-run=client -o yaml | kubectl apply -f -
}
secret tierline-postgres --from-literal=password="$password"
secret tierline-auth --from-literal=hs256-secret="$(random)"
secret tierline-customer --from-literal=database-url="$database_url"
secret tierline-scoring --from-literal=database-url="$database_url" \
    --from-literal=redis-url=redis://tierline-redis:6379
secret tierline-campaign --from-literal=database-url="$database_url"
echo "Secrets created in $namespace."
