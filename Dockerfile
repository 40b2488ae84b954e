# syntax=docker/dockerfile:1
#
# certprobe container image.
#
#   docker build -t certprobe:dev .
#   docker run --rm -p 9915:9915 \
#     -v "$PWD/certprobe.yaml:/etc/certprobe/certprobe.yaml:ro" certprobe:dev
#
# The build stage runs scripts/build-release.sh, the same script CI runs (no
# docker engine there), so the build the image does is the build CI tests.
# Pin the images by digest in production (e.g. let Renovate manage
# `rust:1.95-slim-bookworm@sha256:...`); the tags below fix the Rust minor version
# and the Debian release.

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------- build stage
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Everything the build needs (see .dockerignore for what is left out).
# make: jemalloc (the binary's allocator) is built from source by its configure + make.
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# Cache mounts keep the crate registry and target/ between builds; the script
# copies the stripped binary out of target/ into /out, which is in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    scripts/build-release.sh --out /out

# ---------------------------------------------------------------- runtime stage
# distroless/cc: glibc + libgcc + CA certificates, no shell, no package manager,
# runs as uid/gid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="certprobe" \
      org.opencontainers.image.description="Probes TLS and mutual-TLS endpoints, judges their certificate chains against a supported-CA policy, and exports Prometheus metrics." \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=build /out/certprobe /usr/local/bin/certprobe

# Non-root; numeric so Kubernetes runAsNonRoot can verify it.
USER 65532:65532

# Mount the configuration (and trust stores / MTLS client cert+key next to it)
# read-only at /etc/certprobe; the default command reads
# /etc/certprobe/certprobe.yaml. Nothing is written at run time, so the root file
# system can be read-only (docker run --read-only).

EXPOSE 9915

# distroless has no shell or curl: the binary checks its own /healthz. With TLS on,
# mount the web config at /etc/certprobe/web-config.yml and add
# --web.config.file=/etc/certprobe/web-config.yml to the command: the check then reads
# the same file, speaks TLS and accepts exactly the certificate the daemon serves.
# Without that file it speaks plain HTTP. /healthz is outside basic auth.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/certprobe", "healthcheck", "--url", "http://127.0.0.1:9915/healthz", "--web.config.file", "/etc/certprobe/web-config.yml"]

ENTRYPOINT ["/usr/local/bin/certprobe"]
# Inside a container the exporter must listen on all interfaces (the binary's
# default is 127.0.0.1:9915). Stop with SIGTERM: in-flight probes drain, exit 0.
CMD ["probe", "-c", "/etc/certprobe/certprobe.yaml", "--web.listen-address=0.0.0.0:9915", "--log.format=json"]
STOPSIGNAL SIGTERM
