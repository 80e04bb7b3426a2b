# anonchat container image.
#
#   docker build -t anonchat .
#   docker compose up -d --scale bot=3      (see docker-compose.yml)
#
# Two stages: a full Rust toolchain builds a release binary, and a slim Debian
# image runs it as a non-root user. Plain Dockerfile syntax (no BuildKit cache
# mounts), so it builds the same with any builder.

# ---------------------------------------------------------------------------
# Builder. rust:1-bookworm tracks the latest stable Rust (the crate needs 1.88+)
# on the same Debian release as the runtime stage, so the glibc matches.
FROM rust:1-bookworm AS builder
WORKDIR /build

# 1. Dependencies only. The manifest and lock file change rarely, so this layer
#    (the slow part: every crate in Cargo.lock) stays cached while src/ changes.
#    The stubs stand in for every target declared in Cargo.toml; `--locked`
#    fails the build if Cargo.lock is out of date instead of silently updating it.
#    The manifest is a workspace, so cargo also reads the test-support member's
#    manifest (crates/anonchat-testkit); only the service package is built.
COPY Cargo.toml Cargo.lock ./
COPY crates/anonchat-testkit/Cargo.toml ./crates/anonchat-testkit/
RUN mkdir -p src benches/load crates/anonchat-testkit/src \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > benches/load/main.rs \
    && : > src/lib.rs \
    && : > crates/anonchat-testkit/src/lib.rs \
    && cargo build --release --locked -p anonchat --bin anonchat \
    && rm -rf src

# Cargo checks that every declared target exists, so the benchmark's entry
# point and the test-support member's library stay as stubs (neither is part
# of the image: anonchat-testkit is only a dev-dependency of the service).

# 2. The real sources. locales/ is read at compile time by rust-i18n and the
#    Lua scripts under src/ by include_str!, so both must be here.
#    COPY keeps the files' original modification times, which can be older than
#    the stub build above; touch them so cargo sees them as changed and does
#    not ship the stub binary.
COPY src ./src
COPY locales ./locales
RUN find src locales -type f -exec touch {} + \
    && cargo build --release --locked -p anonchat --bin anonchat \
    && install -m 0755 target/release/anonchat /usr/local/bin/anonchat \
    && strip /usr/local/bin/anonchat \
    && /usr/local/bin/anonchat --version

# ---------------------------------------------------------------------------
# Runtime: glibc plus CA certificates for HTTPS to api.telegram.org (TLS is
# rustls, so no OpenSSL). Nothing else: the health check is the binary itself.
FROM debian:bookworm-slim AS runtime

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 anonchat \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin anonchat

COPY --from=builder /usr/local/bin/anonchat /usr/local/bin/anonchat

# Numeric ids so orchestrators can verify "runs as non-root" without /etc/passwd.
USER 10001:10001

# /healthz, /readyz, /metrics and (INGEST=webhook) the webhook endpoint.
ENV HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080

# `anonchat healthcheck` GETs http://127.0.0.1:<port of HTTP_ADDR>/healthz.
# Exec form: no shell or curl needed in the image. start-period covers
# REDIS_STARTUP_TIMEOUT_SECS (default 30).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["anonchat", "healthcheck"]

# The service drains in-flight work and releases its leases on SIGTERM
# (within SHUTDOWN_GRACE_SECS); give it a stop timeout longer than that.
STOPSIGNAL SIGTERM

ENTRYPOINT ["anonchat"]
CMD ["run"]
