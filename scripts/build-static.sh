#!/usr/bin/env bash
# The image's binary, exactly as the Dockerfile's build stage makes it (the Dockerfile runs this
# script): `cargo build --locked --release` for the host's target with glibc's crt-static, into
# target/image (or $CARGO_TARGET_DIR). Prints the binary's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/image}
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --locked --release --target "$target" >&2
echo "$PWD/$CARGO_TARGET_DIR/$target/release/eso-recovery"
