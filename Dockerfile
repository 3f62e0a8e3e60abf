# iam-audit as a container image: a static binary on an empty base, run as a non-root user.
#
#   docker build --platform linux/amd64 -t iam-audit .
#   docker run --rm --read-only -v /tmp iam-audit demo --output-dir /tmp/demo
#
# CI builds this file with buildah and runs `demo` (to a directory and to S3) in the image as AWS Fargate
# runs it: a read-only root and a /tmp that starts root-owned (deploy/container/build.sh).

# The Rust toolchain is at least the highest rust-version of Cargo.lock's crates (a test checks), and the
# image is pinned by digest: the build is the same wherever and whenever it runs.
FROM rust:1.95.0-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS build
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

FROM scratch AS runtime
COPY --from=build /out/ /
# The CA bundle for TLS to AWS (rustls reads the system's roots); /tmp is the one writable directory of a
# read-only container (the S3 staging directory goes there).
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    TMPDIR=/tmp \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
# Fargate mounts a task volume at /tmp owned by root (0755), which user 10001 cannot write, unless the
# image declares the path a volume: then the image's /tmp (world-writable, sticky) is copied into it (ECS
# developer guide: bind mounts). Docker and Kubernetes (emptyDir, 0777) need no such declaration.
VOLUME ["/tmp"]
# iam-audit is PID 1 and handles SIGTERM itself: an ECS stop or a Kubernetes eviction ends the run as exit
# 143 with its files flushed and uploaded.
ENTRYPOINT ["/iam-audit"]
CMD ["--help"]
