# syntax=docker/dockerfile:1
#
# Loupe container image: `docker build -t loupe .` from the repository root, then
# `docker run --rm -p 8080:8080 --read-only --tmpfs /tmp loupe`.
# linux/amd64 only: the engine is compiled for x86-64-v3 (AVX2 + FMA) at least, so on an arm64
# machine build with `docker build --platform linux/amd64`, and run it on AVX2 CPUs.
#
# Stage 1 builds a release binary with the Swift runtime linked in statically, so the runtime
# stage needs no Swift toolchain; stage 2 is a slim Debian with only the C libraries that binary
# links (OpenSSL's libcrypto/libssl, zlib, libjpeg-turbo's TurboJPEG; libc and libstdc++ are already in the base image) plus CA
# certificates. The binary runs as a numeric non-root user, never needs a writable root
# filesystem (/tmp is enough), and drains on SIGTERM (see Config/loupe.yaml, `shutdown.*`).

ARG SWIFT_VERSION=6.3.1
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------
FROM swift:${SWIFT_VERSION}-${DEBIAN_RELEASE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# zlib, OpenSSL, TurboJPEG and libwebp headers for the CZlib/COpenSSL/CTurboJPEG/CWebP system-library targets. Debian package versions
# are not pinned: the base image tag pins the release, and security updates should flow in.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends zlib1g-dev libssl-dev libturbojpeg0-dev libwebp-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Dependencies first, so source edits do not re-fetch them.
COPY Package.swift ./
RUN swift package resolve
COPY . .
# Package.swift compiles the kernels for x86-64-v3 and x86-64-v4 (picked at start-up by cpuid):
# fixed targets, so the image does not depend on the build machine's CPU.
RUN swift build -c release --static-swift-stdlib --product loupe \
    && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/loupe" /out/loupe \
    && install -D -m 0755 /usr/libexec/swift/linux/swift-backtrace-static /out/swift-backtrace-static \
    && /out/loupe --help > /dev/null

# ---------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 zlib1g libturbojpeg0 libwebp7 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

LABEL org.opencontainers.image.title="loupe" \
      org.opencontainers.image.description="A tiny model server for 28x28 grayscale image classifiers: /predict, health, Prometheus metrics, KServe v2." \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=build /out/loupe /usr/local/bin/loupe
# Swift's crash backtracer (static build), so that a crash logs a symbolicated backtrace of every thread.
COPY --from=build /out/swift-backtrace-static /usr/local/libexec/swift-backtrace-static
# The shipped configuration (every key documented) and the default model. Both are owned by
# root and read-only for the service user; mount a volume on /models to serve your own
# repository (<name>/<version>/model.loupe), or a ConfigMap on /etc/loupe.
COPY Config/loupe.yaml /etc/loupe/loupe.yaml
COPY models/ /models/

# Configuration: Config/loupe.yaml < LOUPE_* environment < flags. Every key has an
# environment name: `batching.max_batch_size` is LOUPE_BATCHING_MAX_BATCH_SIZE.
ENV LOUPE_CONFIG=/etc/loupe/loupe.yaml \
    LOUPE_SERVER_HOST=0.0.0.0 \
    LOUPE_SERVER_PORT=8080 \
    LOUPE_MODELS_DIR=/models \
    LOUPE_LOGGING_FORMAT=json \
    SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/usr/local/libexec/swift-backtrace-static

USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
VOLUME ["/models"]
# `loupe serve` turns readiness to 503 on SIGTERM, serves through shutdown.drain_delay_ms, then
# finishes in-flight requests within shutdown.deadline_ms and exits 0: give `docker stop` a
# longer timeout than their sum (`docker stop -t 15`; compose: stop_grace_period).
STOPSIGNAL SIGTERM
# No curl in the image: the binary checks itself (GET /health/ready on the configured port).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/loupe", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/loupe"]
CMD ["serve"]
