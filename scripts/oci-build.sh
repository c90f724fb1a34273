#!/usr/bin/env bash
# One image from a Dockerfile, built the one way this repository builds images: buildah (Debian's
# package, installed if missing) with no network and no pulls, vfs storage under target/image/,
# a fixed timestamp (the same inputs give the same digest), written as an OCI archive. With
# `--platform` naming several platforms it builds one image per platform into an image index (a
# multi-arch image) and the archive holds the index; FROM scratch with no RUN needs no emulator.
# Usage: scripts/oci-build.sh CONTEXT NAME:TAG ARCHIVE [buildah bud flags...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ctx=$1 tag=$2 archive=$3 prev=
shift 3
if ! command -v buildah >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah; } >&2
fi
store=$root/target/image/buildah
mkdir -p "$store"
# One build at a time (test binaries, the bench and a person may ask at once).
exec 9>"$store/.lock"
flock 9
engine=(buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs)
index=
for arg in "$@"; do
  if [[ $arg == --platform=*,* || ($prev == --platform && $arg == *,*) ]]; then index=1; fi
  prev=$arg
done
rm -f "$archive"
if [ -n "$index" ]; then
  "${engine[@]}" manifest rm "$tag" >/dev/null 2>&1 || true
  "${engine[@]}" bud --quiet --network none --pull=never --timestamp 0 "$@" \
    --manifest "$tag" -f "$ctx/Dockerfile" "$ctx" >&2
  "${engine[@]}" manifest push --quiet --all "$tag" "oci-archive:$archive:$tag" >&2
  "${engine[@]}" manifest rm "$tag" >/dev/null 2>&1 || true
else
  "${engine[@]}" bud --quiet --network none --pull=never --timestamp 0 "$@" \
    -t "$tag" -f "$ctx/Dockerfile" "$ctx" >&2
  "${engine[@]}" push --quiet "$tag" "oci-archive:$archive:$tag" >&2
fi
# The storage keeps nothing the archives do not (and holds nothing else: one build at a time).
"${engine[@]}" rmi --all --force >/dev/null 2>&1 || true
