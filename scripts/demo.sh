#!/usr/bin/env bash
# `make demo`: the incident, played on a local control plane and a real OpenBao (tests/demo.rs).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/run-harness-test.sh" demo
