#!/usr/bin/env bash
# The chart's README (charts/eso-recovery/README.md), written by helm-docs (built from its Go
# module, tests/helm-docs) from README.md.gotmpl and values.yaml's `# --` comments: the values
# table is never edited by hand. With --check, writes nothing and fails when the README differs
# from what helm-docs would write now (scripts/scan.sh runs it so, in CI).
# Usage: scripts/chart-docs.sh [--check] [ROOT]   (ROOT: the checkout, default this one)
set -euo pipefail
check=
if [ "${1:-}" = --check ]; then check=1; shift; fi
helm_docs=$("$(dirname "${BASH_SOURCE[0]}")/../tests/helm-docs/build.sh")
cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}"
args=(--chart-search-root charts --sort-values-order file --skip-version-footer --log-level warning)
readme=charts/eso-recovery/README.md
fresh=$(mktemp "$readme.XXXXXX")
trap 'rm -f "$fresh"' EXIT
"$helm_docs" "${args[@]}" --dry-run > "$fresh"
if [ -n "$check" ]; then
  if ! diff -u "$readme" "$fresh"; then
    echo "chart-docs.sh: $readme is stale (values.yaml or README.md.gotmpl changed): run scripts/chart-docs.sh and commit it" >&2
    exit 1
  fi
  echo "helm-docs: $readme is up to date"
elif cmp -s "$readme" "$fresh"; then
  echo "helm-docs: $readme is up to date"
else
  # Replaced whole (rename), never rewritten in place: a chart test may be reading it.
  chmod 0644 "$fresh" && mv "$fresh" "$readme"
  echo "helm-docs: wrote $readme"
fi
