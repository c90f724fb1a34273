#!/usr/bin/env bash
# Builds (once) the External Secrets Operator controller pinned in go.mod and prints the path of
# the binary. $ESO_BIN, when it names an executable, is used instead (a prebuilt controller of the
# same version). Built into target/eso/<hash of go.mod+go.sum>, so a version bump rebuilds.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../go-build.sh"

build() {
  go build -trimpath -ldflags='-s -w' -o "$1/external-secrets" github.com/external-secrets/external-secrets
}
build_once ESO_BIN eso external-secrets "ESO's controller" build
