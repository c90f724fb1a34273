# syntax=docker/dockerfile:1
# The runtime stage alone, FROM scratch: it copies a binary built beforehand and the few files of
# distroless/static that the binary uses, as ESO's own Dockerfile copies its prebuilt binary.
# Why not a multi-stage build on rust and distroless: those bases come from a registry, and the
# machines that build and test this image reach none, so the image must build with no network
# (`buildah bud --network none --pull never`). What it holds is what distroless/static gave:
# passwd and group with the nonroot user (65532), nsswitch.conf (files, then DNS: glibc's static
# NSS reads it), the CA bundle, an empty /tmp; no shell, no libc, no package manager.
#
# The build context is staged by scripts/build-image.sh, the one definition of the build:
#   rootfs/                      image/rootfs/ of this repository plus Debian's CA bundle
#   eso-recovery-$TARGETARCH     scripts/build-static.sh's static binary for that architecture
FROM scratch
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
# Cargo.toml's `repository`, passed in by scripts/build-image.sh.
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="eso-recovery" \
      org.opencontainers.image.description="Restarts the External Secrets Operator once Vault is back and ESO is still stuck" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY rootfs/ /
COPY eso-recovery-${TARGETARCH} /usr/local/bin/eso-recovery
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/eso-recovery"]
