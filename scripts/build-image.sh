#!/usr/bin/env bash
# The container image, built from the repository's Dockerfile by a real engine with no network
# (scripts/oci-build.sh: buildah): stages the build context (image/rootfs/, Debian's CA bundle and
# scripts/build-static.sh's binary for each architecture) and builds into an OCI archive under
# target/image/. Prints the archive's path.
#   one architecture (default: this machine's):  target/image/eso-recovery-ARCH.oci.tar
#   several (the release: amd64 arm64):          target/image/eso-recovery.oci.tar, an image index
# Usage: scripts/build-image.sh [ARCH...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
case "$(uname -m)" in x86_64) host=amd64 ;; aarch64) host=arm64 ;; *) host=$(uname -m) ;; esac
[ $# -gt 0 ] || set -- "$host"
version=$(scripts/package-field.sh version)
source_url=$(scripts/package-field.sh repository)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
out=$PWD/target/image
mkdir -p "$out"
# One staging at a time per checkout (test binaries, the bench and a person may ask at once).
exec 8>"$out/.stage.lock"
flock 8
ctx=$out/context
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc/ssl/certs"
chmod 1777 "$ctx/rootfs/tmp"
cp -r image/rootfs/. "$ctx/rootfs/"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
platforms=
for arch in "$@"; do
  bin=$(scripts/build-static.sh "$arch")
  install -m 0755 "$bin" "$ctx/eso-recovery-$arch"
  platforms=${platforms:+$platforms,}linux/$arch
done
cp Dockerfile "$ctx/"

if [ $# -eq 1 ]; then archive=$out/eso-recovery-$1.oci.tar; else archive=$out/eso-recovery.oci.tar; fi
scripts/oci-build.sh "$ctx" "localhost/eso-recovery:$version" "$archive" --platform "$platforms" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source_url"
echo "$archive"
