# syntax=docker/dockerfile:1
# Build a statically linked binary (glibc's crt-static; its built-in files/dns NSS resolves
# cluster DNS names) and run it on distroless/static as UID 65532: about 7 MiB of binary on a
# base of about 2 MiB.
FROM rust:1.95-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
ENV RUSTFLAGS="-C target-feature=+crt-static"
COPY Cargo.toml Cargo.lock ./
# Cache the dependencies apart from the sources.
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && target=$(rustc -vV | sed -n 's/^host: //p') \
    && cargo build --locked --release --target "$target" \
    && rm -rf src target/*/release/deps/eso_recovery* target/*/release/eso-recovery*
COPY src ./src
RUN target=$(rustc -vV | sed -n 's/^host: //p') \
    && cargo build --locked --release --target "$target" \
    && cp "target/$target/release/eso-recovery" /eso-recovery \
    && /eso-recovery --version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /eso-recovery /usr/local/bin/eso-recovery
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/eso-recovery"]
