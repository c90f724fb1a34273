#!/usr/bin/env bash
# Publishes what scripts/release.sh put in dist/, the way users pull it: the image index by its
# digest (skopeo, every platform, digests kept), signed by cosign with an SBOM attestation, and
# the chart as an OCI artifact (helm push). Names come from Cargo.toml's
# [package.metadata.release]; REGISTRY replaces their host (a local stand-in for ghcr.io).
#   COSIGN_KEY (+ COSIGN_PASSWORD)  sign with this key and upload to no transparency log;
#                                   unset: keyless, from the forge workflow's OIDC identity
#   PLAIN_HTTP=1                    the registry speaks plain HTTP (one on 127.0.0.1)
#   COSIGN_BIN, HELM_BIN            prebuilt tools (else built from tests/release, tests/helm)
# Prints the image reference it signed (name@digest).
# Usage: scripts/publish.sh VERSION [REGISTRY]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=${1:?usage: scripts/publish.sh VERSION [REGISTRY]}
image=$(scripts/package-field.sh image) charts=$(scripts/package-field.sh charts)
registry=${2:-${image%%/*}}
image=$registry/${image#*/} charts=$registry/${charts#*/}
index=dist/eso-recovery-v$version.oci.tar sbom=dist/eso-recovery-v$version.cdx.json
chart=dist/eso-recovery-$version.tgz
for f in "$index" "$sbom" "$chart"; do
  [ -f "$f" ] || { echo "publish.sh: $f is missing: run scripts/release.sh $version first" >&2; exit 1; }
done
command -v skopeo >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo; } >&2
cosign=${COSIGN_BIN:-$(tests/release/build.sh cosign)}
helm=${HELM_BIN:-$(tests/helm/build.sh)}
skopeo_tls=() cosign_http=() helm_http=()
if [ "${PLAIN_HTTP:-}" = 1 ]; then
  skopeo_tls=(--dest-tls-verify=false) cosign_http=(--allow-http-registry) helm_http=(--plain-http)
fi
cosign_key=()
[ -z "${COSIGN_KEY:-}" ] || cosign_key=(--key "$COSIGN_KEY" --tlog-upload=false)

digest=$(tar -xOf "$index" index.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')
skopeo copy --quiet --all --preserve-digests "${skopeo_tls[@]}" \
  "oci-archive:$index" "docker://$image:$version" >&2
# Signed by digest, the index and each platform's image, so a policy may check either.
"$cosign" sign --yes --recursive "${cosign_key[@]}" "${cosign_http[@]}" "$image@$digest" >&2
"$cosign" attest --yes --type cyclonedx --predicate "$sbom" "${cosign_key[@]}" "${cosign_http[@]}" \
  "$image@$digest" >&2
"$helm" push "$chart" "oci://$charts" "${helm_http[@]}" >&2
echo "$image@$digest"
