#!/usr/bin/env bash
# `make bench-recovery`: seconds from "Vault ready" until the Secret holds Vault's value again,
# after a 3-minute seal, a 6-minute outage (Vault's container killed, back sealed) and a 3-minute
# cut path (the node's packet filter), on real nodes (tests/bench_recovery/) with ESO v2.9.0
# (ESO_BENCH_ESO=0.16.2 for the oldest supported): ESO alone; eso-recovery's CronJob ticking by
# itself, restarting ESO single, in HA with its default 15 s lease and with a 5 s one; and
# resyncing ESO single and in HA; one node each, Vault back 10 and 50 s after a tick, with the
# pods replaced, the leader's changes and the ExternalSecret writes ESO's webhook refused
# (about 50 minutes). ESO_BENCH_ONLY=strategies plays only restart and resync side by side (ESO
# single and in HA, four nodes); ESO_BENCH_ONLY=phases brings Vault back every 5 s of the minute
# after a short seal and a cut path (ESO single, three nodes), with the most runs at once and the
# ticks skipped; parts join with commas (strategies,phases). ESO_BENCH_ONLY=processes instead runs the process
# stacks (ESO's controller with the kubelet stand-in, 41 of them, ESO_BENCH_PARALLEL at once,
# default 8): bench/peer.sh beside ESO alone and eso-recovery at six phases, and 1,000
# ExternalSecrets after a seal (on 2.9 also with ESO's Vault token cache on); `outages` or
# `scale` for a part of those, `all` for everything.
# Installs curl (for the peer) from Debian if missing, prints the tables and writes
# docs/recovery-timeline.svg.
set -euo pipefail
if ! command -v curl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq curl
fi
exec "$(dirname "${BASH_SOURCE[0]}")/../scripts/run-harness-test.sh" bench_recovery --release
