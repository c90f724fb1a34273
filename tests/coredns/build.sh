#!/usr/bin/env bash
# Builds (once) CoreDNS pinned in go.mod and prints the path of the binary. $COREDNS_BIN, when it
# names an executable, is used instead. Built into target/coredns/<hash of go.mod+go.sum>.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../go-build.sh"

build() {
  go build -trimpath -ldflags='-s -w' -o "$1/coredns" github.com/coredns/coredns
}
build_once COREDNS_BIN coredns coredns "CoreDNS" build
