#!/usr/bin/env bash
# Fills a release's version and published image into every file that states them, from the one
# place that names them (Cargo.toml: `version`, `[package.metadata.release] image`): the crate and
# Cargo.lock, the chart's `version` and `appVersion`, the chart's default image, and the
# kustomization's `images:`; then the chart's README, rewritten by helm-docs (scripts/chart-docs.sh)
# where the checkout has its template. Idempotent: for the version already there it changes nothing.
# Usage: scripts/set-version.sh VERSION [ROOT]   (ROOT: the checkout, default this one)
set -euo pipefail
version=${1:?usage: scripts/set-version.sh VERSION [ROOT]}
root=${2:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# SemVer 2.0 (major.minor.patch, an optional pre-release), as Cargo and Helm both require.
if ! [[ $version =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "set-version.sh: VERSION=$version is not a SemVer version like 1.2.3 or 1.2.3-rc.1" >&2
  exit 2
fi
python3 - "$root" "$version" <<'EOF'
import pathlib, re, sys, tomllib

root, version = pathlib.Path(sys.argv[1]), sys.argv[2]
cargo = tomllib.loads((root / "Cargo.toml").read_text())
image = cargo["package"]["metadata"]["release"]["image"]
registry, _, repository = image.partition("/")

def fill(path, *edits):
    """Each edit: (regex with a prefix group, new value); every one must match exactly once.
    A file already saying it is left alone, a changed one replaced whole (rename): tests and
    builds running beside a release read these files and must never see one half-written."""
    file = root / path
    text = original = file.read_text()
    for pattern, value in edits:
        text, n = re.subn(pattern, lambda m: m.group(1) + value, text, count=1, flags=re.M)
        if n != 1:
            sys.exit(f"set-version.sh: {path}: found no line matching {pattern!r}")
    if text != original:
        fresh = file.with_name(file.name + ".set-version")
        fresh.write_text(text)
        fresh.replace(file)

fill("Cargo.toml", (r'^(version = )".*"$', f'"{version}"'))
fill("Cargo.lock", (r'^(name = "eso-recovery"\nversion = )".*"$', f'"{version}"'))
fill("charts/eso-recovery/Chart.yaml",
     (r"^(version: ).*$", version), (r"^(appVersion: ).*$", f'"{version}"'))
fill("charts/eso-recovery/values.yaml",
     (r"^(  registry: ).*$", registry), (r"^(  repository: ).*$", repository))
fill("manifests/base/kustomization.yaml",
     (r"^(    newName: ).*$", image), (r"^(    newTag: ).*$", version))
EOF
if [ -f "$root/charts/eso-recovery/README.md.gotmpl" ]; then
  "$(dirname "${BASH_SOURCE[0]}")/chart-docs.sh" "$root" >&2
fi
