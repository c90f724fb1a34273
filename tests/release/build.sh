#!/usr/bin/env bash
# Builds (once) the tools a release is published and checked with here, pinned in go.mod: the CNCF
# distribution registry (`registry`, the stand-in for ghcr.io) and `cosign`; prints the path of
# the one asked for. $REGISTRY_BIN / $COSIGN_BIN, when set, name a prebuilt one instead.
# Usage: tests/release/build.sh registry|cosign
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../go-build.sh"

build() {
  go build -trimpath -ldflags='-s -w' -o "$1/registry" github.com/distribution/distribution/v3/cmd/registry
  go build -trimpath -ldflags='-s -w' -o "$1/cosign" github.com/sigstore/cosign/v2/cmd/cosign
}
case ${1:-} in
  registry) build_once REGISTRY_BIN release-tools registry "the distribution registry and cosign" build ;;
  cosign) build_once COSIGN_BIN release-tools cosign "the distribution registry and cosign" build ;;
  *) echo "usage: tests/release/build.sh registry|cosign" >&2; exit 2 ;;
esac
