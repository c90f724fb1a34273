#!/usr/bin/env bash
# Builds (once) actionlint, pinned in go.mod, for scripts/scan.sh, and prints the binary's path.
# $ACTIONLINT_BIN, when set, names a prebuilt actionlint instead.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../go-build.sh"

build() {
  local version
  version=$(go list -m -f '{{.Version}}' github.com/rhysd/actionlint)
  go build -trimpath -ldflags="-s -w -X github.com/rhysd/actionlint.version=$version" \
    -o "$1/actionlint" github.com/rhysd/actionlint/cmd/actionlint
}
build_once ACTIONLINT_BIN actionlint actionlint "actionlint" build
