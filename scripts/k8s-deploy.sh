#!/usr/bin/env bash
# Deploys an overlay: replaces the migration Jobs (a Job's template cannot change in place),
# applies everything, waits for the migrations, then for every Deployment's rollout. The services
# enforce the order themselves (replicas stay NOT_SERVING until their schema is migrated), so a
# GitOps tool that applies all at once is safe too; this script just reports progress.
#
# Usage: scripts/k8s-deploy.sh k8s/overlays/dev   (or k8s/overlays/prod)
set -euo pipefail
overlay="${1:?usage: scripts/k8s-deploy.sh <overlay directory>}"
namespace="$(sed -n 's/^namespace: *//p' "$overlay/kustomization.yaml")"
: "${namespace:?the overlay sets no namespace}"

rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
kubectl kustomize "$overlay" >"$rendered"

echo "==> namespace $namespace: replacing the migration Jobs"
kubectl delete job --namespace "$namespace" --ignore-not-found \
    --selector app.kubernetes.io/component=migration
echo "==> applying $overlay"
kubectl apply -f "$rendered"
echo "==> waiting for the migrations"
kubectl wait --namespace "$namespace" --for=condition=complete --timeout=30m \
    job --selector app.kubernetes.io/component=migration
for deployment in $(kubectl get deployment --namespace "$namespace" \
    --selector app.kubernetes.io/part-of=tierline -o name); do
    echo "==> rollout of $deployment"
    kubectl rollout status --namespace "$namespace" --timeout=10m "$deployment"
done
echo "==> deployed"
