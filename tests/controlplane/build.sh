#!/usr/bin/env bash
# Builds (once) the local control plane the tests and the demo run against, and the node's parts
# (kubelet, kube-scheduler, kube-proxy, the pause init), and prints the folder
# that holds it. Reuses KUBEBUILDER_ASSETS when that folder already has the binaries (the envtest
# convention: a user with setup-envtest needs no Go), else builds into target/controlplane/<version>.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bins=(etcd kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy pause)

have_all() {
  local dir=$1 b
  shift
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

# setup-envtest's folders hold etcd, kube-apiserver and kubectl but no kube-controller-manager:
# accept them; the one test that needs the controller manager then says it is missing.
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have_all "$KUBEBUILDER_ASSETS" etcd kube-apiserver kubectl; then
  have_all "$KUBEBUILDER_ASSETS" kube-controller-manager \
    || echo "build.sh: $KUBEBUILDER_ASSETS has no kube-controller-manager; the real-rollout test needs it" >&2
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

source "$here/../go-build.sh"
out="${CONTROLPLANE_DIR:-$root/target/controlplane/$(module_key "$here")}"
if have_all "$out" "${bins[@]}"; then
  echo "$out"
  exit 0
fi

build() {
  # Stamp the real version, as the release build does, so discovery and `kubectl version` say v1.34.x.
  local kver kflags cmd
  kver=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
  kflags="-s -w -X k8s.io/component-base/version.gitVersion=$kver -X k8s.io/client-go/pkg/version.gitVersion=$kver"
  go build -trimpath -ldflags='-s -w' -o "$1/etcd" go.etcd.io/etcd/server/v3
  for cmd in kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy; do
    go build -trimpath -ldflags="$kflags" -o "$1/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
  # The pod sandbox's init, from the same module's source (no registry for the pause image).
  local src
  src=$(go mod download -json k8s.io/kubernetes | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc libc6-dev; }
  gcc -static -O2 -DVERSION=3.10 -o "$1/pause" "$src/build/pause/linux/pause.c"
}
build_into "$out" "the control plane (or set KUBEBUILDER_ASSETS)" build
echo "$out"
