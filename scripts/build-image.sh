#!/usr/bin/env bash
# The container image, built from the repository's Dockerfile by a real engine with no network
# (scripts/oci-build.sh: buildah): stages the build context (image/rootfs/, Debian's CA bundle and
# scripts/build-static.sh's binary) and builds for this machine's architecture into an OCI
# archive under target/image/. Prints the archive's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) echo "build-image.sh: no image for $(uname -m)" >&2; exit 1 ;;
esac
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
out=$PWD/target/image
mkdir -p "$out"
# One staging at a time per checkout (test binaries, the bench and a person may ask at once).
exec 8>"$out/.stage.lock"
flock 8
bin=$(scripts/build-static.sh)

ctx=$out/context
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc/ssl/certs"
chmod 1777 "$ctx/rootfs/tmp"
cp -r image/rootfs/. "$ctx/rootfs/"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
install -m 0755 "$bin" "$ctx/eso-recovery-$arch"

cp Dockerfile "$ctx/"
archive=$out/eso-recovery-$arch.oci.tar
scripts/oci-build.sh "$ctx" "localhost/eso-recovery:$version" "$archive" \
  --platform "linux/$arch" --build-arg "VERSION=$version" --build-arg "REVISION=$revision"
echo "$archive"
