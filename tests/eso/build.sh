#!/usr/bin/env bash
# Builds (once) the External Secrets Operator controller pinned in go.mod and prints the path of
# the binary. $ESO_BIN, when it names an executable, is used instead (a prebuilt controller of the
# same version). Built into target/eso/<hash of go.mod+go.sum>, so a version bump rebuilds.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

source "$here/../go-build.sh"
prebuilt ESO_BIN
out="$root/target/eso/$(module_key "$here")"
if [ -x "$out/external-secrets" ]; then
  echo "$out/external-secrets"
  exit 0
fi

build() {
  go build -trimpath -ldflags='-s -w' -o "$1/external-secrets" github.com/external-secrets/external-secrets
}
build_into "$out" "ESO's controller (or set ESO_BIN)" build
echo "$out/external-secrets"
