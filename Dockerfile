# syntax=docker/dockerfile:1.7
#
# One image for the three Tierline services: tierline-customer, tierline-scoring and
# tierline-campaign. Each Kubernetes Deployment (and migration Job) runs its own binary from it
# (`command:` in k8s/base). Why one image and not three:
# - the services share nearly every dependency and are built in one `cargo build`, so three
#   images would repeat the same 20-minute compile or split one build across three pipelines;
# - one tag is one release: the three services and their migrations always ship together, so a
#   rollout never mixes a new scoring with an old customer by accident;
# - one image to scan, sign and promote. The cost is ~2 binaries' worth of unused bytes per pod.
#
# Build: docker build -t tierline:$(git rev-parse --short HEAD) .
# protoc is not needed: the proto crate builds with a vendored protoc.

ARG RUST_VERSION=1.95

# --- Planner and cook: dependencies compiled in a layer of their own -------------------------
# cargo-chef reduces the workspace to a recipe (manifests and lock file only); the cook layer
# below is rebuilt only when dependencies change, not when our sources do.
FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ENV CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json \
        -p tierline-customer -p tierline-scoring -p tierline-campaign
COPY . .
RUN cargo build --release --locked \
        -p tierline-customer -p tierline-scoring -p tierline-campaign --bins \
    && mkdir -p /out \
    && cp target/release/tierline-customer target/release/tierline-scoring \
          target/release/tierline-campaign /out/

# --- Runtime: glibc and CA roots, no shell, no package manager, no compiler -----------------
# distroless "cc" carries libc and libgcc_s (the binaries link them); TLS is rustls, so no
# OpenSSL. The nonroot variant runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="tierline" \
      org.opencontainers.image.description="Tierline customer, scoring and campaign services" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ /usr/local/bin/
USER 65532:65532
# gRPC: customer 50051, scoring 50052, campaign 50053; metrics 9151-9153.
EXPOSE 50051 50052 50053 9151 9152 9153
# No default binary on purpose: every workload names the one it runs.
ENTRYPOINT []
