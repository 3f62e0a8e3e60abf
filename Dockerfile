# iam-audit as a container image: a static binary on an empty base, run as a non-root user.
#
#   docker build -t iam-audit .
#   docker run --rm --read-only --tmpfs /tmp iam-audit demo --output-dir /tmp/demo
#
# The runtime stage is the same text as deploy/container/Containerfile.runtime, which CI builds from a
# binary it compiled the same way and runs `demo` in (a test keeps the two identical).

FROM rust:1.85-slim-bookworm AS build
WORKDIR /src
# The slim Rust image has what the C parts (aws-lc, mimalloc) build with: gcc, libc6-dev, ca-certificates.
COPY . .
# A static glibc binary: it runs on an empty base image. Build scripts stay dynamic (--target).
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu \
 && mkdir -p /out/etc/ssl/certs /out/tmp && chmod 1777 /out/tmp \
 && cp target/x86_64-unknown-linux-gnu/release/iam-audit /out/iam-audit \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt \
 && echo 'iam-audit:x:10001:10001:iam-audit:/tmp:/iam-audit' > /out/etc/passwd \
 && echo 'iam-audit:x:10001:' > /out/etc/group

# --- runtime (identical to deploy/container/Containerfile.runtime from here on) ---
FROM scratch AS runtime
COPY --from=build /out/ /
# The CA bundle for TLS to AWS (rustls reads the system's roots); /tmp is where a read-only container
# mounts its one writable directory (the S3 staging directory goes there).
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    TMPDIR=/tmp \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
# iam-audit is PID 1 and handles SIGTERM itself: an ECS stop or a Kubernetes eviction ends the run as exit
# 143 with its files flushed and uploaded.
ENTRYPOINT ["/iam-audit"]
CMD ["--help"]
