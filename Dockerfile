# syntax=docker/dockerfile:1
# Build a statically linked binary (glibc's crt-static; its built-in files/dns NSS resolves
# cluster DNS names) and run it on distroless/static as UID 65532: about 7 MiB of binary on a
# base of about 2 MiB. scripts/build-static.sh is the one definition of the build (the image test,
# tests/image_rootfs.rs, builds with it too and reads USER, COPY and ENTRYPOINT from this file).
FROM rust:1.95-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY scripts/build-static.sh scripts/
COPY Cargo.toml Cargo.lock ./
# Cache the dependencies apart from the sources.
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && scripts/build-static.sh \
    && rm -rf src target/image/*/release/deps/eso_recovery* target/image/*/release/eso-recovery*
COPY src ./src
RUN cp "$(scripts/build-static.sh)" /eso-recovery && /eso-recovery --version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /eso-recovery /usr/local/bin/eso-recovery
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/eso-recovery"]
