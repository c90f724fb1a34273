#!/usr/bin/env bash
# Prints the folder of ESO's CRDs at the version pinned in go.mod (the controller the tests run
# serves exactly these), downloaded through the Go module proxy and verified against go.sum.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
command -v go >/dev/null || { echo "crds.sh: Go is needed to fetch ESO's CRDs" >&2; exit 1; }
dir=$(GOFLAGS=-mod=readonly go mod download -json github.com/external-secrets/external-secrets \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir/config/crds/bases" ] || { echo "crds.sh: no config/crds/bases in $dir" >&2; exit 1; }
echo "$dir/config/crds/bases"
