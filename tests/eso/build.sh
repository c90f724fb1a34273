#!/usr/bin/env bash
# Builds (once) the External Secrets Operator controller pinned in go.mod and prints the path of
# the binary. $ESO_BIN, when it names an executable, is used instead (a prebuilt controller of the
# same version). Built into target/eso/<hash of go.mod+go.sum>, so a version bump rebuilds.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ -n "${ESO_BIN:-}" ]; then
  [ -x "$ESO_BIN" ] || { echo "build.sh: ESO_BIN=$ESO_BIN is not an executable" >&2; exit 1; }
  echo "$ESO_BIN"
  exit 0
fi

key=$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)
out="$root/target/eso/$key"
if [ -x "$out/external-secrets" ]; then
  echo "$out/external-secrets"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is needed to build ESO's controller (or set ESO_BIN)" >&2; exit 1; }
mkdir -p "$out"
start=$(date +%s)
(
  cd "$here"
  CGO_ENABLED=0 GOFLAGS=-mod=readonly \
    go build -trimpath -ldflags='-s -w' -o "$out/external-secrets.tmp" github.com/external-secrets/external-secrets
) >&2
mv "$out/external-secrets.tmp" "$out/external-secrets"
echo "build.sh: built ESO's controller in $(( $(date +%s) - start ))s into $out" >&2
echo "$out/external-secrets"
