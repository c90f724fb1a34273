# Sourced by the build.sh of each Go module under tests/ (controlplane, eso, helm, coredns): build
# Go tools once, into a folder of target/ keyed by the pinned module set. The sourcing script sets
# `here` to its module's folder.

# module_key DIR: 12 hex digits of DIR's go.mod and go.sum, so a version bump rebuilds.
module_key() {
  cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-12
}

# build_into DIR WHAT FUNCTION: runs FUNCTION (which builds into "$DIR.tmp", from the module's
# folder, with CGO off and the module set read-only) and then moves the result into place, so an
# interrupted build is never taken for a finished one. Its output goes to stderr.
build_into() {
  local out=$1 what=$2 build=$3 start
  command -v go >/dev/null || { echo "build.sh: Go is needed to build $what" >&2; exit 1; }
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  start=$(date +%s)
  (
    cd "$here"
    export CGO_ENABLED=0 GOFLAGS=-mod=readonly
    "$build" "$out.tmp"
  ) >&2
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "build.sh: built $what in $(( $(date +%s) - start ))s into $out" >&2
  ls -l "$out" >&2
}

# prebuilt VAR: when $VAR is set, prints it and exits (the user's own build), or fails when it is
# not an executable.
prebuilt() {
  local path=${!1:-}
  [ -n "$path" ] || return 0
  [ -x "$path" ] || { echo "build.sh: $1=$path is not an executable" >&2; exit 1; }
  echo "$path"
  exit 0
}

# build_once VAR DIR BINARY WHAT FUNCTION: prints the path of BINARY, from $VAR when set (a
# prebuilt one), else from target/DIR/<module key>/, built there by FUNCTION the first time.
build_once() {
  local var=$1 dir=$2 binary=$3 what=$4 build=$5 out
  prebuilt "$var"
  out="$(cd "$here/../.." && pwd)/target/$dir/$(module_key "$here")"
  [ -x "$out/$binary" ] || build_into "$out" "$what (or set $var)" "$build"
  echo "$out/$binary"
}
