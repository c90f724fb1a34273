#!/usr/bin/env bash
# `make bench-recovery`: seconds from "Vault ready" until the Secret holds Vault's value again,
# for ESO alone, bench/peer.sh and eso-recovery ticking as the CronJob does, after a 3-minute
# seal, a 6-minute outage and a 3-minute cut path, Vault back at six phases of the minute; and
# 1,000 ExternalSecrets after a seal (tests/bench_recovery.rs: 41 real stacks, ESO_BENCH_PARALLEL
# at once, default 8; ESO_BENCH_ONLY=outages or scale for a part). Installs curl (for the peer)
# from Debian if missing, prints the tables and writes docs/recovery-timeline.svg.
set -euo pipefail
if ! command -v curl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq curl
fi
exec "$(dirname "${BASH_SOURCE[0]}")/../scripts/run-harness-test.sh" bench_recovery --release
