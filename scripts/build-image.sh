#!/usr/bin/env bash
# The container image, built from the repository's Dockerfile by a real engine (buildah, Debian's
# package, installed if missing) with no network: stages the build context (image/rootfs/, Debian's
# CA bundle and scripts/build-static.sh's binary), builds for this machine's architecture with a
# fixed timestamp (the same inputs give the same digest), and writes it as an OCI archive.
# Prints the archive's path. Storage (vfs) and the archive live under target/image/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v buildah >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah; } >&2
fi
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) echo "build-image.sh: no image for $(uname -m)" >&2; exit 1 ;;
esac
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
out=$PWD/target/image
mkdir -p "$out"
# One build at a time per checkout (test binaries, the bench and a person may ask at once).
exec 9>"$out/.build-image.lock"
flock 9
bin=$(scripts/build-static.sh)

ctx=$out/context
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc/ssl/certs"
chmod 1777 "$ctx/rootfs/tmp"
cp -r image/rootfs/. "$ctx/rootfs/"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
install -m 0755 "$bin" "$ctx/eso-recovery-$arch"

engine=(buildah --root "$out/buildah/root" --runroot "$out/buildah/run" --storage-driver vfs)
tag=localhost/eso-recovery:$version
"${engine[@]}" bud --quiet --network none --pull=never --timestamp 0 \
  --platform "linux/$arch" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  -t "$tag" -f Dockerfile "$ctx" >&2
archive=$out/eso-recovery-$arch.oci.tar
rm -f "$archive"
"${engine[@]}" push --quiet "$tag" "oci-archive:$archive:$tag" >&2
echo "$archive"
