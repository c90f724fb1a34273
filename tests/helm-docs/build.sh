#!/usr/bin/env bash
# Builds (once) helm-docs, pinned in go.mod, for scripts/chart-docs.sh, and prints the binary's
# path. $HELM_DOCS_BIN, when set, names a prebuilt helm-docs instead.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../go-build.sh"

build() {
  local version
  version=$(go list -m -f '{{.Version}}' github.com/norwoodj/helm-docs)
  go build -trimpath -ldflags="-s -w -X main.version=$version" \
    -o "$1/helm-docs" github.com/norwoodj/helm-docs/cmd/helm-docs
}
build_once HELM_DOCS_BIN helm-docs helm-docs "helm-docs" build
