#!/usr/bin/env bash
# `make demo`: builds what it needs, then plays the incident on a local control plane and a real
# OpenBao. Everything it starts is a child of the test process (killed with it, also on Ctrl-C);
# its files live in one temporary folder removed on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BAO_BIN=$(scripts/install-openbao.sh)
export BAO_BIN
tests/controlplane/build.sh >/dev/null
scratch=$(mktemp -d -t eso-recovery-demo.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
trap 'echo; echo "interrupted: stopping everything"; exit 130' INT TERM
TMPDIR="$scratch" cargo test --quiet --locked --test demo -- --ignored --nocapture --test-threads=1
