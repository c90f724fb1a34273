#!/usr/bin/env bash
# `make demo`: the incident, played on a one-node cluster (the kubelet, containerd, CoreDNS), with
# OpenBao, ESO and eso-recovery as pods and the CronJob ticking by itself (tests/demo.rs).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/run-harness-test.sh" demo
