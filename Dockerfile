# zimfleet as a container image: a release build in the Rust image, then only the binary, the
# shipped settings and bots on a small Debian runtime, running as an unprivileged user.
#
#   docker build -t zimfleet:0.1.0 .
#   docker run --rm zimfleet:0.1.0 --version
#
# The build is the one .ci/run checks: the toolchain of Cargo.toml's rust-version, the
# committed Cargo.lock (--locked), the release profile of Cargo.toml. examples/k8s/ runs this
# image (docs/kubernetes.md says how to get it into a cluster).

# ---- build ---------------------------------------------------------------------------------
FROM rust:1.88-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them: a dummy crate with the real
# manifest and lock file.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin zimfleet \
    && rm -rf src target/release/.fingerprint/zimfleet-*
COPY src src
COPY config config
RUN cargo build --release --locked --bin zimfleet \
    && strip target/release/zimfleet

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim
# No shell tools are needed at run time; TLS roots are built into the binary (webpki-roots).
RUN groupadd --system --gid 10001 zimfleet \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/zimfleet --create-home zimfleet
COPY --from=build /src/target/release/zimfleet /usr/local/bin/zimfleet
COPY config /etc/zimfleet/config
COPY bots /etc/zimfleet/bots
LABEL org.opencontainers.image.title="zimfleet" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
USER 10001:10001
WORKDIR /var/lib/zimfleet
# 7480: the runner's admin face (/health, /metrics) when admin.listen says so.
# 9120: `zimfleet server` (the reference backend) when its listen says so.
EXPOSE 7480 9120
ENTRYPOINT ["/usr/local/bin/zimfleet"]
CMD ["run", "--bots", "/etc/zimfleet/bots"]
