# syntax=docker/dockerfile:1
# Builds every Intake binary (intake-api, intake-worker, intake-admin, intakectl) into one
# slim image; compose.yaml picks the program per service. Dependencies are cooked in their
# own layer by cargo-chef, so a source change does not rebuild the world.

# The toolchain this repository is built and tested with (at least the workspace's
# rust-version), on the same Debian release as the runtime stage so the binaries find the
# glibc they were linked against.
FROM rust:1.95.0-slim-bookworm AS chef
# Everything the build invokes besides cargo and rustc: a C compiler and libc headers (ring's
# C and assembly, tikv-jemalloc-sys' jemalloc, through the cc crate) and make with sh (the
# jemalloc build runs its `configure` script, then `make`). The slim image has gcc but no make.
# No -sys crate in the build needs pkg-config, perl, cmake or OpenSSL (docs/operations.md,
# "The image").
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# cargo-chef's recipe leaves out crates wired in by a [patch] path (the patched lettre), so
# cooking needs them as they are.
COPY vendor vendor
RUN cargo chef cook --release --recipe-path recipe.json
COPY . .
# The api on its own: built together, cargo would unify the store's features and link its
# Postgres half into the api too (docs/decisions.md, "Stored state").
RUN cargo build --release --locked -p intake-api \
 && cargo build --release --locked --bin intake-worker --bin intake-admin --bin intakectl

FROM debian:bookworm-slim AS runtime
# A fixed numeric user (10001), so an orchestrator can check runAsNonRoot without a passwd
# lookup (deploy/k8s sets runAsUser to the same number).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 intake \
 && useradd --system --uid 10001 --gid intake --home-dir /var/lib/intake --create-home intake \
 && mkdir -p /var/lib/intake/staging /var/lib/intake/media /var/lib/intake/outbox \
 && chown -R intake:intake /var/lib/intake
COPY --from=builder /src/target/release/intake-api /src/target/release/intake-worker \
     /src/target/release/intake-admin /src/target/release/intakectl /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/intake
ENV INTAKE_LOG_FORMAT=json \
    INTAKE_STAGING_DIR=/var/lib/intake/staging \
    INTAKE_MEDIA_DIR=/var/lib/intake/media \
    INTAKE_OUTBOX_DIR=/var/lib/intake/outbox
CMD ["intake-api"]
