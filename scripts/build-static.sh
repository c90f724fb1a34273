#!/usr/bin/env bash
# A self-contained binary for PLATFORM (amd64 or arm64 for linux, default this machine's; or
# darwin-arm64, darwin-amd64, windows-amd64), the one the image and the release archives ship,
# into target/image (linux) or target/plugin (the others), or $CARGO_TARGET_DIR. Prints its path.
#   amd64: `cargo build --release` for x86_64-unknown-linux-gnu with glibc's crt-static, on an
#          x86_64 machine (glibc's static NSS reads the image's nsswitch.conf; the node tests run it).
#   arm64: aarch64-unknown-linux-musl, linked by zig (`cargo zigbuild`: ziglang and cargo-zigbuild
#          from PyPI, pinned, in a virtualenv under target/), from any machine with no cross
#          toolchain; zig links no static glibc, hence musl.
#   windows-amd64: x86_64-pc-windows-gnu, linked by zig against its own MinGW import libraries:
#          eso-recovery.exe needs only the DLLs every Windows has.
#   darwin-arm64, darwin-amd64: {aarch64,x86_64}-apple-darwin, linked by zig against its own
#          libSystem stubs, with no macOS SDK: nothing in the build links an Apple framework
#          (src/https.rs says how the TLS roots are found without Security.framework).
# The commit `--version` reports comes from git, or from $ESO_RECOVERY_COMMIT (build.rs).
# Usage: scripts/build-static.sh [amd64|arm64|windows-amd64|darwin-arm64|darwin-amd64]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ZIGLANG_VERSION=0.17.0
CARGO_ZIGBUILD_VERSION=0.24.0
case "$(uname -m)" in x86_64) host=amd64 ;; aarch64) host=arm64 ;; *) host=$(uname -m) ;; esac
arch=${1:-$host}
# The image's binaries in target/image, the laptops' in target/plugin: cargo locks a target folder
# for a whole build, so a macOS build in the release's test never holds up the node tests' image.
case $arch in
  amd64 | arm64) export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/image} ;;
  *) export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/plugin} ;;
esac
zigbuild() {
  rustup target list --installed 2>/dev/null | grep -qx "$1" || rustup target add "$1" >&2
  local venv=$PWD/target/zig
  if ! "$venv/bin/cargo-zigbuild" --version 2>/dev/null | grep -q " $CARGO_ZIGBUILD_VERSION\$" \
    || ! "$venv/bin/python-zig" version 2>/dev/null | grep -qx "$ZIGLANG_VERSION"; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" >&2
  fi
  PATH=$venv/bin:$PATH cargo zigbuild --quiet --locked --release --target "$1" >&2
}
exe=eso-recovery
case $arch in
  amd64)
    [ "$host" = amd64 ] || { echo "build-static.sh: the amd64 build needs an x86_64 machine" >&2; exit 1; }
    target=x86_64-unknown-linux-gnu
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --release --target "$target" >&2
    ;;
  arm64)
    target=aarch64-unknown-linux-musl
    zigbuild "$target"
    ;;
  windows-amd64)
    target=x86_64-pc-windows-gnu
    zigbuild "$target"
    exe=eso-recovery.exe
    ;;
  darwin-arm64 | darwin-amd64)
    # The oldest macOS each Rust target supports; zig would otherwise stamp its own newest.
    case $arch in
      darwin-arm64) target=aarch64-apple-darwin MACOSX_DEPLOYMENT_TARGET=11.0 ;;
      *) target=x86_64-apple-darwin MACOSX_DEPLOYMENT_TARGET=10.12 ;;
    esac
    export MACOSX_DEPLOYMENT_TARGET
    zigbuild "$target"
    ;;
  *) echo "build-static.sh: no build for '$arch' (amd64, arm64, windows-amd64, darwin-arm64 or darwin-amd64)" >&2; exit 2 ;;
esac
echo "$PWD/$CARGO_TARGET_DIR/$target/release/$exe"
