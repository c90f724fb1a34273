# syntax=docker/dockerfile:1
# Build: a static-enough binary (glibc, libgcc) for distroless/cc; run as UID 65532.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Cache the dependencies apart from the sources.
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --locked --release \
    && rm -rf src target/release/deps/eso_recovery* target/release/eso-recovery*
COPY src ./src
RUN cargo build --locked --release && ./target/release/eso-recovery --version

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/eso-recovery /usr/local/bin/eso-recovery
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/eso-recovery"]
