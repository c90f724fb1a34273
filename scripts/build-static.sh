#!/usr/bin/env bash
# A static linux binary for ARCH (amd64 or arm64; default: this machine's), the one the image and
# the release archives ship, into target/image (or $CARGO_TARGET_DIR). Prints its path.
#   amd64: `cargo build --release` for x86_64-unknown-linux-gnu with glibc's crt-static, on an
#          x86_64 machine (glibc's static NSS reads the image's nsswitch.conf; the node tests run it).
#   arm64: aarch64-unknown-linux-musl, linked by zig (`cargo zigbuild`: ziglang and cargo-zigbuild
#          from PyPI, pinned, in a virtualenv under target/), from any machine with no cross
#          toolchain; zig links no static glibc, hence musl.
# The commit `--version` reports comes from git, or from $ESO_RECOVERY_COMMIT (build.rs).
# Usage: scripts/build-static.sh [amd64|arm64]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ZIGLANG_VERSION=0.17.0
CARGO_ZIGBUILD_VERSION=0.24.0
case "$(uname -m)" in x86_64) host=amd64 ;; aarch64) host=arm64 ;; *) host=$(uname -m) ;; esac
arch=${1:-$host}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/image}
case $arch in
  amd64)
    [ "$host" = amd64 ] || { echo "build-static.sh: the amd64 build needs an x86_64 machine" >&2; exit 1; }
    target=x86_64-unknown-linux-gnu
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --release --target "$target" >&2
    ;;
  arm64)
    target=aarch64-unknown-linux-musl
    rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" >&2
    venv=$PWD/target/zig
    if ! "$venv/bin/cargo-zigbuild" --version 2>/dev/null | grep -q " $CARGO_ZIGBUILD_VERSION\$" \
      || ! "$venv/bin/python-zig" version 2>/dev/null | grep -qx "$ZIGLANG_VERSION"; then
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" >&2
    fi
    PATH=$venv/bin:$PATH cargo zigbuild --quiet --locked --release --target "$target" >&2
    ;;
  *) echo "build-static.sh: no build for architecture '$arch' (amd64 or arm64)" >&2; exit 2 ;;
esac
echo "$PWD/$CARGO_TARGET_DIR/$target/release/eso-recovery"
