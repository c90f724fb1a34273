#!/usr/bin/env bash
# Runs one of the ignored harness tests (`demo`, `bench`, `bench_recovery`) with what it needs:
# OpenBao, the control plane, ESO's controller, and one temporary folder for everything it
# writes, removed on exit and on Ctrl-C (the servers it starts die with the test process).
# Usage: scripts/run-harness-test.sh TEST [cargo test flags...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
test=$1
shift
BAO_BIN=$(scripts/install-openbao.sh)
export BAO_BIN
tests/controlplane/build.sh >/dev/null
for version in 2.9.0 0.16.2; do tests/eso/build.sh "$version" >/dev/null; done
scratch=$(mktemp -d -t "eso-recovery-$test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
trap 'echo; echo "interrupted: stopping everything"; exit 130' INT TERM
TMPDIR="$scratch" cargo test --quiet --locked "$@" --test "$test" -- --ignored --nocapture --test-threads=1
