#!/usr/bin/env bash
# `make bench-recovery`: seconds from Vault's unseal until the Secret holds Vault's value again,
# for ESO alone, bench/peer.sh and eso-recovery, after a 3-minute seal and an 8-minute outage
# (tests/bench_recovery.rs: six real stacks at once, about 17 minutes). Installs curl (for the
# peer) from Debian if missing, prints the table and writes docs/recovery-timeline.svg.
set -euo pipefail
if ! command -v curl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq curl
fi
exec "$(dirname "${BASH_SOURCE[0]}")/../scripts/run-harness-test.sh" bench_recovery --release
