#!/usr/bin/env bash
# Everything a tag publishes, built offline into dist/ (`make release VERSION=x.y.z`; the forge's
# release workflow runs the same). VERSION is first written into every file that states it
# (scripts/set-version.sh: a no-op when the checkout already says it, as a tagged one does).
#   eso-recovery-vV-linux-{amd64,arm64}         static binaries (scripts/build-static.sh)
#   eso-recovery-vV-darwin-{amd64,arm64}        the kubectl plugin for macOS laptops
#   eso-recovery-vV-{linux,darwin}-*.tar.gz     each binary with LICENSE and README.md
#   eso-recovery-vV-windows-amd64.exe           the kubectl plugin for Windows laptops
#   eso-recovery-vV-windows-amd64.zip           eso-recovery.exe with LICENSE and README.md
#   eso-recovery-vV.cdx.json                    CycloneDX SBOM of the Rust dependencies (linux)
#   eso-recovery-vV-{darwin,windows-amd64}.cdx.json  the same for the macOS and Windows builds
#   eso-recovery-vV.oci.tar                     the image index, amd64 and arm64 (scripts/build-image.sh)
#   eso-recovery-V.tgz                          the Helm chart, version and appVersion V
#   eso-recovery.yaml                           the krew manifest (.krew.yaml) with the archives' URLs and sha256s
#   checksums.txt                               sha256 of each file above
# The archives are reproducible: sorted members, owner 0, mtime of the commit, gzip with no name
# (the zip: the same, deflated at level 9, the commit's time as each member's).
# Usage: scripts/release.sh VERSION
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO_CYCLONEDX_VERSION=0.5.9
version=${1:-}
[ -n "$version" ] || { echo "usage: scripts/release.sh VERSION   (or: make release VERSION=x.y.z)" >&2; exit 2; }
scripts/set-version.sh "$version"
tag=v$version
repository=$(scripts/package-field.sh repository)
epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
start=$(date +%s)
step() { printf '==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))" >&2; }

dist=$PWD/dist
rm -rf "$dist" && mkdir -p "$dist"
tools=$PWD/target/tools

step "binaries, in two streams at once: linux (target/image) and the laptops' (target/plugin)"
# A release build spends much of its time in one thread (fat LTO, one codegen unit), so two
# builds side by side use two cores; the Rust targets and zig are installed first, once.
scripts/build-static.sh --tools amd64 arm64 darwin-arm64 darwin-amd64 windows-amd64
laptops() {
  local platform
  for platform in darwin-arm64 darwin-amd64 windows-amd64; do
    scripts/build-static.sh "$platform" >/dev/null
  done
}
linux_and_sbom_tool() {
  scripts/build-static.sh amd64 >/dev/null
  scripts/build-static.sh arm64 >/dev/null
  if ! "$tools/bin/cargo-cyclonedx" cyclonedx --version 2>/dev/null | grep -q " $CARGO_CYCLONEDX_VERSION\$"; then
    cargo install --quiet --locked --root "$tools" "cargo-cyclonedx@$CARGO_CYCLONEDX_VERSION" >&2
  fi
}
laptops &
laptops_pid=$!
linux_and_sbom_tool &
linux_pid=$!
# Both are waited for, whatever the first says: no build is left running behind a failure.
status=0
wait "$linux_pid" || status=$?
wait "$laptops_pid" || status=$?
[ "$status" -eq 0 ] || { echo "release.sh: a build failed (its error is above)" >&2; exit "$status"; }

for platform in linux-amd64 linux-arm64 darwin-arm64 darwin-amd64; do
  step "binary, $platform"
  bin=$(scripts/build-static.sh "${platform#linux-}")
  name=eso-recovery-$tag-$platform
  install -m 0755 "$bin" "$dist/$name"
  stage=$(mktemp -d)
  install -m 0755 "$bin" "$stage/eso-recovery"
  install -m 0644 LICENSE README.md "$stage/"
  tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" --format=gnu \
    -cf - eso-recovery LICENSE README.md | gzip -9n > "$dist/$name.tar.gz"
  rm -rf "$stage"
done

step "binary, windows/amd64"
exe=$(scripts/build-static.sh windows-amd64)
name=eso-recovery-$tag-windows-amd64
install -m 0755 "$exe" "$dist/$name.exe"
python3 - "$dist/$name.zip" "$epoch" "$exe" LICENSE README.md <<'PY'
import sys, time, zipfile
out, epoch, exe, *docs = sys.argv[1:]
stamp = time.gmtime(max(int(epoch), 315532800))[:6]  # a zip's clock starts in 1980
members = sorted([("eso-recovery.exe", exe, 0o755)] + [(d, d, 0o644) for d in docs])
with zipfile.ZipFile(out, "w") as z:
    for name, path, mode in members:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.create_system, info.external_attr = 3, (0o100000 | mode) << 16
        with open(path, "rb") as f:
            z.writestr(info, f.read(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
PY

step "SBOMs (cargo-cyclonedx $CARGO_CYCLONEDX_VERSION)"
# The dependencies the shipped binary is built with (no dev- or build-only crates), resolved for
# linux (both targets resolve the same crates), for macOS (webpki-roots instead of the system's
# store; both targets alike) and for Windows (schannel and windows-sys).
sbom() {
  "$tools/bin/cargo-cyclonedx" cyclonedx --quiet --format json --spec-version 1.5 \
    --target "$1" --no-build-deps --override-filename eso-recovery-sbom >&2
  mv eso-recovery-sbom.json "$dist/$2"
  # It writes one beside every workspace member's Cargo.toml; the test harness ships nothing.
  rm -f tests/harness/eso-recovery-sbom.json
}
sbom x86_64-unknown-linux-gnu "eso-recovery-$tag.cdx.json"
sbom aarch64-apple-darwin "eso-recovery-$tag-darwin.cdx.json"
sbom x86_64-pc-windows-gnu "eso-recovery-$tag-windows-amd64.cdx.json"

step "image index, linux/amd64 and linux/arm64 (buildah)"
cp "$(scripts/build-image.sh amd64 arm64)" "$dist/eso-recovery-$tag.oci.tar"

step "Helm chart"
helm=${HELM_BIN:-$(tests/helm/build.sh)}
"$helm" package charts/eso-recovery --version "$version" --app-version "$version" -d "$dist" >&2

step "krew manifest"
python3 - "$dist" "$tag" "$repository" <<'PY'
import hashlib, pathlib, re, sys
dist, tag, repository = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
template = pathlib.Path(".krew.yaml").read_text()
def uri_and_sha(m):
    indent, uri = m.group(1), m.group(2).replace("{{ .TagName }}", tag)
    if not uri.startswith(f"{repository}/releases/download/{tag}/"):
        sys.exit(f"release.sh: .krew.yaml: {uri} is not under {repository}/releases/download/{tag}/")
    archive = dist / uri.rsplit("/", 1)[1]
    if not archive.is_file():
        sys.exit(f"release.sh: .krew.yaml names {archive.name}, which the release did not build")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    return f"{indent}uri: {uri}\n{indent}sha256: {sha}"
text = re.sub(r'^( *)\{\{addURIAndSha "([^"]+)" \.TagName \}\}$', uri_and_sha, template, flags=re.M)
text = text.replace("{{ .TagName }}", tag)
if "{{" in text:
    sys.exit("release.sh: .krew.yaml has a template action this script does not fill in")
(dist / "eso-recovery.yaml").write_text(text)
PY

(cd "$dist" && sha256sum -- * > checksums.txt)
step "done: $dist"
ls -l "$dist" >&2
