#!/usr/bin/env bash
# Builds (once) the External Secrets Operator of one version and prints the folder that holds it:
# `external-secrets` (the controller), `crds/` (its CRDs, one file a kind) and `chart/` (its own
# Helm chart, less the optional bitwarden-sdk-server dependency, which lives only in a registry
# this machine cannot reach). Usage: tests/eso/build.sh VERSION, where VERSION is
#   2.9.0   what users install today: built from ESO's source tarball in ../shared/eso/ (ESO >= 1.0
#           joins nested modules that the Go module proxy refuses), verified against its sha256 and
#           unpacked outside the work tree. $ESO_SOURCE names another copy of that tarball, or a
#           checkout of ESO at the tag helm-chart-2.9.0 (the forge's CI, which has no ../shared).
#   0.16.2  the oldest supported: built from the Go module proxy (v0.16.2/go.mod).
# Cached in target/eso/VERSION-<key>/, the key being the tarball's hash or the pinned module set's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$here/../go-build.sh"

version=${1:?usage: tests/eso/build.sh VERSION (2.9.0 or 0.16.2)}

# copy_parts SRC OUT: the CRDs and the chart of the source tree SRC into OUT.
copy_parts() {
  mkdir -p "$2/crds"
  cp "$1"/config/crds/bases/*.yaml "$2/crds/"
  rm -f "$2/crds/kustomization.yaml"
  cp -r "$1/deploy/charts/external-secrets" "$2/chart"
  chmod -R u+w "$2/chart"
  sed -i '/^dependencies:/,$d' "$2/chart/Chart.yaml"
  rm -f "$2/chart/Chart.lock"
}

case "$version" in
  2.9.0)
    sha=8a9ec91933fcce7e6a83c6f9e641a1f70842a09886f441b1f2affc9efea10fec
    source=${ESO_SOURCE:-$repo/../shared/eso/external-secrets-2.9.0-src.tar.gz}
    if [ -d "$source" ]; then
      grep -q '^version: "2.9.0"' "$source/deploy/charts/external-secrets/Chart.yaml" 2>/dev/null \
        || { echo "build.sh: $source is not a checkout of ESO's helm-chart-2.9.0" >&2; exit 1; }
      key=src-$(cat "$source/go.mod" "$source/go.sum" | sha256sum | cut -c1-12)
    elif [ -f "$source" ]; then
      key=${sha:0:12}
    else
      echo "build.sh: ESO 2.9.0's source is not at $source (set ESO_SOURCE)" >&2
      exit 1
    fi
    out="$repo/target/eso/$version-$key"
    build() {
      local tree=$source src
      if [ -f "$source" ]; then
        echo "$sha  $source" | sha256sum --check --quiet - \
          || { echo "build.sh: $source is not ESO 2.9.0's source (its sha256 differs)" >&2; exit 1; }
        src=$(mktemp -d -t eso-2.9.0-src.XXXXXX)
        trap 'rm -rf "$src"' RETURN
        tar -xzf "$source" -C "$src"
        tree=$src/external-secrets-2.9.0
      fi
      # The vault tag brings the Vault provider (and the Kubernetes one, and every generator);
      # without it ESO 2.x has no Vault provider at all.
      (cd "$tree" && go build -tags vault -trimpath -ldflags='-s -w' -o "$1/external-secrets" .)
      copy_parts "$tree" "$1"
    }
    ;;
  0.16.2)
    here="$here/v$version"
    out="$repo/target/eso/$version-$(module_key "$here")"
    build() {
      go build -trimpath -ldflags='-s -w' -o "$1/external-secrets" github.com/external-secrets/external-secrets
      local src
      src=$(go mod download -json github.com/external-secrets/external-secrets \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
      copy_parts "$src" "$1"
    }
    ;;
  *)
    echo "build.sh: no ESO $version here; the versions are 2.9.0 and 0.16.2" >&2
    exit 1
    ;;
esac
[ -x "$out/external-secrets" ] || build_into "$out" "ESO $version" build
echo "$out"
