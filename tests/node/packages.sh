#!/usr/bin/env bash
# The node's Debian packages, installed when missing: containerd and runc (the runtime the kubelet
# drives through CRI), the CNI plugins (bridge, host-local, loopback), iptables and conntrack (for
# kube-proxy), and skopeo (pushes the image to the node's registry). Prints the containerd version.
set -euo pipefail
need=()
for pair in containerd:/usr/bin/containerd runc:/usr/sbin/runc \
  containernetworking-plugins:/usr/lib/cni/bridge iptables:/usr/sbin/iptables \
  conntrack:/usr/sbin/conntrack skopeo:/usr/bin/skopeo; do
  [ -x "${pair#*:}" ] || need+=("${pair%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >&2
fi
containerd --version
