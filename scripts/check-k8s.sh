#!/usr/bin/env bash
# Validates the Kubernetes manifests offline: renders every kustomization (base, each overlay,
# each platform piece) with `kubectl kustomize`, then checks the output strictly against the
# Kubernetes API schemas with kubernetes-validate (PyPI; it bundles the schemas, so no cluster is
# needed). Unknown fields, wrong types, missing required fields and kustomize errors all fail.
# Custom resources (ServiceMonitor, CloudNativePG Cluster) have no bundled schema: they are
# reported as warnings and not checked.
#
# Usage: scripts/check-k8s.sh [K8S_DIR]   (default: k8s/ of this repository)
# Exit status: 0 valid, 1 invalid, 2 a tool is missing.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
k8s_dir="$(cd "${1:-$repo/k8s}" && pwd)"

# The oldest Kubernetes minor the manifests must work on (native gRPC probes are GA since 1.27;
# matchLabelKeys in topology spread since 1.27 beta).
kubernetes_version="1.30.0"
validator_version="1.37.0"

render() {
    if command -v kubectl >/dev/null 2>&1; then
        kubectl kustomize "$1"
    elif command -v kustomize >/dev/null 2>&1; then
        kustomize build "$1"
    else
        echo "check-k8s: neither kubectl (>= 1.27) nor kustomize (>= 5) is on the PATH" >&2
        return 2
    fi
}

# kubernetes-validate in a virtualenv of its own, made once and reused.
venv="${TIERLINE_K8S_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tierline/k8s-validate-$validator_version}"
# Several checks may start at once on a fresh machine (the tests run in parallel): one installs
# under a lock while the others wait, and a half-made virtualenv is never left at "$venv".
if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
    mkdir -p "$(dirname "$venv")"
    exec 9>"$venv.lock"
    flock 9
    if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
        echo "check-k8s: installing kubernetes-validate $validator_version into $venv" >&2
        rm -rf "$venv"
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$validator_version" >&2
    fi
    flock -u 9
    exec 9>&-
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

failed=0
checked=0
while IFS= read -r kustomization; do
    dir="$(dirname "$kustomization")"
    name="${dir#"$k8s_dir"/}"
    # Components are checked as part of the overlays that use them.
    if grep -q '^kind: Component' "$kustomization"; then
        continue
    fi
    rendered="$out/$(echo "$name" | tr / -).yaml"
    if ! render "$dir" >"$rendered" 2>"$rendered.err"; then
        echo "FAIL $name: kustomize could not render it:" >&2
        sed 's/^/    /' "$rendered.err" >&2
        failed=1
        continue
    fi
    if ! grep -q '^kind:' "$rendered"; then
        echo "FAIL $name: rendered no resources" >&2
        failed=1
        continue
    fi
    if "$venv/bin/kubernetes-validate" --strict --quiet -k "$kubernetes_version" "$rendered" \
        >"$rendered.log" 2>&1; then
        echo "ok   $name ($(grep -c '^kind:' "$rendered") resources)"
        grep '^WARN' "$rendered.log" | sort -u | sed "s|$rendered|$name|; s/^/    /" || true
    else
        echo "FAIL $name: not valid for Kubernetes $kubernetes_version:" >&2
        grep -v '^WARN' "$rendered.log" | sed "s|$rendered|$name|; s/^/    /" >&2
        failed=1
    fi
    checked=$((checked + 1))
done < <(find "$k8s_dir" -name kustomization.yaml -not -path '*/node_modules/*' | sort)

if [[ $checked -eq 0 && $failed -eq 0 ]]; then
    echo "check-k8s: no kustomization found under $k8s_dir" >&2
    exit 1
fi
exit "$failed"
