#!/usr/bin/env bash
# Builds (once) krew, pinned in go.mod, so the release test installs the plugin as a user does,
# and prints the binary's path. $KREW_BIN, when set, names a prebuilt krew instead.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../go-build.sh"

build() {
  go build -trimpath -ldflags='-s -w' -o "$1/krew" sigs.k8s.io/krew/cmd/krew
}
build_once KREW_BIN krew krew "krew" build
