#!/usr/bin/env bash
# One field of Cargo.toml's [package], read by the scripts that build and publish a release (the
# one place that names the version, the repository and, under [package.metadata.release], what a
# release publishes). Usage: scripts/package-field.sh version|repository|image|charts
set -euo pipefail
python3 - "$(dirname "${BASH_SOURCE[0]}")/../Cargo.toml" "${1:?usage: scripts/package-field.sh FIELD}" <<'PY'
import sys, tomllib
package = tomllib.load(open(sys.argv[1], "rb"))["package"]
field = sys.argv[2]
value = package.get(field, package.get("metadata", {}).get("release", {}).get(field))
if not isinstance(value, str):
    sys.exit(f"package-field.sh: Cargo.toml has no [package] {field} (nor under [package.metadata.release])")
print(value)
PY
