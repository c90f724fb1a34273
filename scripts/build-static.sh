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
#        scripts/build-static.sh --tools PLATFORM...   only install what those builds need (the
#          Rust targets, zig): builds may then run at once, and the test command fetches them
#          while the Go builds run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ZIGLANG_VERSION=0.17.0
CARGO_ZIGBUILD_VERSION=0.24.0
case "$(uname -m)" in x86_64) host=amd64 ;; aarch64) host=arm64 ;; *) host=$(uname -m) ;; esac

# target PLATFORM: the Rust target it is built for.
target() {
  case $1 in
    amd64) echo x86_64-unknown-linux-gnu ;;
    arm64) echo aarch64-unknown-linux-musl ;;
    windows-amd64) echo x86_64-pc-windows-gnu ;;
    darwin-arm64) echo aarch64-apple-darwin ;;
    darwin-amd64) echo x86_64-apple-darwin ;;
    *) echo "build-static.sh: no build for '$1' (amd64, arm64, windows-amd64, darwin-arm64 or darwin-amd64)" >&2; exit 2 ;;
  esac
}

# tools TARGET...: the Rust targets and the pinned zig and cargo-zigbuild (PyPI, a virtualenv
# under target/), each installed once, under a lock (rustup and pip must not run twice at once).
venv=$PWD/target/zig
tools() {
  mkdir -p target
  (
    flock 7
    local t
    for t in "$@"; do
      rustup target list --installed 2>/dev/null | grep -qx "$t" || rustup target add "$t" >&2
    done
    if ! "$venv/bin/cargo-zigbuild" --version 2>/dev/null | grep -q " $CARGO_ZIGBUILD_VERSION\$" \
      || ! "$venv/bin/python-zig" version 2>/dev/null | grep -qx "$ZIGLANG_VERSION"; then
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" >&2
    fi
  ) 7>target/.build-static-tools.lock
}

if [ "${1:-}" = --tools ]; then
  shift
  targets=()
  for platform in "$@"; do [ "$platform" = amd64 ] || targets+=("$(target "$platform")"); done
  tools "${targets[@]}"
  exit 0
fi

arch=${1:-$host}
target=$(target "$arch")
# The image's binaries in target/image, the laptops' in target/plugin: cargo locks a target folder
# for a whole build, so a macOS build in the release's test never holds up the node tests' image.
case $arch in
  amd64 | arm64) export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/image} ;;
  *) export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/plugin} ;;
esac
exe=eso-recovery
case $arch in
  amd64)
    [ "$host" = amd64 ] || { echo "build-static.sh: the amd64 build needs an x86_64 machine" >&2; exit 1; }
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --release --target "$target" >&2
    ;;
  *)
    case $arch in
      windows-amd64) exe=eso-recovery.exe ;;
      # The oldest macOS each Rust target supports; zig would otherwise stamp its own newest.
      darwin-arm64) export MACOSX_DEPLOYMENT_TARGET=11.0 ;;
      darwin-amd64) export MACOSX_DEPLOYMENT_TARGET=10.12 ;;
    esac
    tools "$target"
    PATH=$venv/bin:$PATH cargo zigbuild --quiet --locked --release --target "$target" >&2
    ;;
esac
echo "$PWD/$CARGO_TARGET_DIR/$target/release/$exe"
