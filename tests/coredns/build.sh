#!/usr/bin/env bash
# Builds (once) CoreDNS pinned in go.mod and prints the path of the binary. $COREDNS_BIN, when it
# names an executable, is used instead. Built into target/coredns/<hash of go.mod+go.sum>.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

source "$here/../go-build.sh"
prebuilt COREDNS_BIN
out="$root/target/coredns/$(module_key "$here")"
if [ -x "$out/coredns" ]; then
  echo "$out/coredns"
  exit 0
fi

build() {
  go build -trimpath -ldflags='-s -w' -o "$1/coredns" github.com/coredns/coredns
}
build_into "$out" "CoreDNS (or set COREDNS_BIN)" build
echo "$out/coredns"
