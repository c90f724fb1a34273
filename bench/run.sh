#!/usr/bin/env bash
# `make bench`: eso-recovery against bench/peer.sh, on the same real control plane (TLS) and the
# same real OpenBao, in one run (tests/bench.rs). Installs curl (for the peer) and GNU time (for
# each side's own peak RSS) from Debian if missing, builds the release binary, and prints the
# tables the README shows. ESO_BENCH_ONLY=main: the main table alone (a few minutes);
# ESO_BENCH_SCALING=0: without the scaling table.
set -euo pipefail
if ! command -v curl >/dev/null || [ ! -x /usr/bin/time ]; then
  apt-get update -qq && apt-get install -y -qq curl time
fi
exec "$(dirname "${BASH_SOURCE[0]}")/../scripts/run-harness-test.sh" bench --release
