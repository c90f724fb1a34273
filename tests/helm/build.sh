#!/usr/bin/env bash
# Builds (once) Helm, pinned in go.mod, for the chart's tests, and prints the binary's path.
# $HELM_BIN, when it names an executable, is used instead (a prebuilt helm 3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../go-build.sh"

build() {
  # Stamped as Helm's own Makefile does: its version, and the Kubernetes version of its client-go
  # (the default for `helm template` and `helm lint`).
  local version k8s major minor flags
  version=$(go list -m -f '{{.Version}}' helm.sh/helm/v3)
  k8s=$(go list -m -f '{{.Version}}' k8s.io/client-go)
  major=$(( $(echo "$k8s" | cut -d. -f1 | tr -d v) + 1 ))
  minor=$(echo "$k8s" | cut -d. -f2)
  flags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
  for pkg in pkg/lint/rules pkg/chartutil; do
    flags="$flags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=$major -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$minor"
  done
  go build -trimpath -ldflags="$flags" -o "$1/helm" helm.sh/helm/v3/cmd/helm
}
build_once HELM_BIN helm helm "Helm" build
