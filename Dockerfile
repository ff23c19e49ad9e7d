# syntax=docker/dockerfile:1
# The operator image: `kfp-operator` (all subcommands; the chart runs `kfp-operator run --config ...`).
#
#   docker build -t kfp-operator.local/kfp-operator-controller:0.1.0 .
#
# scripts/images.sh builds the same image without Docker (same binary, path, user, entrypoint), as an OCI tar.
#
# Builder: the Rust toolchain the workspace is developed with, building the locked dependency graph in release
# mode. Runtime: distroless `cc` (glibc and libgcc, no shell, no package manager), as its non-root user. TLS is
# rustls with ring, so no OpenSSL is needed at build or run time.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src
# Manifests first, so the dependency layer is cached while only sources change.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
# The examples are workspace members: cargo reads every member's manifest, even to build one package.
COPY examples examples
# The stub compile shim is compiled into the binary (include_str!).
COPY compilers compilers
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kfp-operator --bin kfp-operator \
    && install -D -m 0755 target/release/kfp-operator /out/kfp-operator

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="kfp-operator" \
      org.opencontainers.image.description="Kubernetes operator for ML pipelines (Kubeflow Pipelines, Vertex AI)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/kfp-operator /kfp-operator
# distroless' nonroot user; the chart's pod securityContext uses the same ids.
USER 65532:65532
EXPOSE 8080 8081 8082 9443
ENTRYPOINT ["/kfp-operator"]
CMD ["run"]
