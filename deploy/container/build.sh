#!/bin/sh
# Build the repository's whole Dockerfile with buildah (Debian's package: no daemon), then run iam-audit in
# the image as AWS Fargate runs it: a read-only root filesystem, user 10001, and the task volume at /tmp
# created root-owned (0755) and filled from the image's /tmp only because the image declares /tmp a VOLUME
# (ECS developer guide, bind mounts: "the data in the VOLUME directive path is copied to the data
# volume"). In it: `demo` writing to a directory, `demo` writing to S3 (a moto server of the test venv on
# 127.0.0.1), the same S3 run against a /tmp without the declaration (it must fail, and say why), and
# SIGTERM ending a run as exit 143 with its files. What CI runs (.ci/run), from the repository's root:
#
#   deploy/container/build.sh              # --run-only: run the image built last time again
#
# Where the Dockerfile's base image cannot be pulled (CI machines reach package registries only), the
# Dockerfile is built as written from a stand-in for that base: Debian bookworm from Debian's own mirror
# (debootstrap: gcc, libc6-dev and ca-certificates, as in the slim Rust image) and this machine's Rust
# toolchain of the same version, where the official image keeps them. Every instruction of the
# Dockerfile runs; only the base's digest is not checked here, and the script says so.
set -eu
root_dir=$(pwd)
[ -f "$root_dir/Dockerfile" ] || { echo "build.sh: run it from the repository's root" >&2; exit 2; }
target="${CARGO_TARGET_DIR:-$root_dir/target}"
b="buildah --storage-driver vfs"
work=$(mktemp -d)
moto_pid=""
container=""
cleanup() {
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
  [ -n "$container" ] && $b rm "$container" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

base=$(sed -n 's/^FROM \([^ ]*\) AS build$/\1/p' Dockerfile)
version=$(printf '%s' "$base" | sed -n 's/^rust:\([0-9][0-9.]*\)-.*/\1/p')
[ -n "$version" ] || { echo "build.sh: no 'FROM rust:VERSION-… AS build' in the Dockerfile" >&2; exit 1; }
registry="${CARGO_HOME:-$HOME/.cargo}/registry"
mkdir -p "$registry"
# The crates come from this machine's cargo cache where it has them (crates.io otherwise).
build_flags="--isolation chroot --layers=false -v $registry:/usr/local/cargo/registry -f Dockerfile -t localhost/iam-audit:ci"

if [ "${1:-}" = --run-only ] && $b inspect localhost/iam-audit:ci >/dev/null 2>&1; then
  echo "build.sh: running the image built before (--run-only)"
elif $b pull "docker.io/library/$base" >"$work/pull.log" 2>&1; then
  # shellcheck disable=SC2086
  $b bud $build_flags .
  echo "build.sh: the Dockerfile built as written, from $base"
else
  why=$(tail -n 1 "$work/pull.log")
  sysroot=$(rustc "+$version" --print sysroot 2>/dev/null || true)
  if [ -z "$sysroot" ] || ! command -v debootstrap >/dev/null 2>&1; then
    echo "build.sh: cannot pull $base ($why), and cannot make a stand-in for it here (Rust $version: ${sysroot:-not installed}; debootstrap: $(command -v debootstrap || echo 'not installed')): the image was not built" >&2
    exit 3
  fi
  echo "build.sh: cannot pull $base ($why); building the Dockerfile from a stand-in: Debian bookworm from deb.debian.org and this machine's Rust $version (the base image's digest is not checked here)"
  standin="$target/container/bookworm"
  if [ ! -x "$standin/usr/bin/gcc" ]; then
    rm -rf "$standin"
    mkdir -p "$(dirname "$standin")"
    debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm "$standin" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
      || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  fi
  toolchain="/usr/local/rustup/toolchains/$version-x86_64-unknown-linux-gnu"
  mkdir -p "$standin/usr/local/cargo/bin" "$standin$toolchain"
  for tool in cargo rustc rustdoc; do
    ln -sf "$toolchain/bin/$tool" "$standin/usr/local/cargo/bin/$tool"
  done
  c=$($b from scratch)
  $b copy "$c" "$standin" / >/dev/null
  $b config --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env RUST_VERSION="$version" "$c"
  $b commit --rm "$c" "localhost/rust-standin:$version" >/dev/null
  # shellcheck disable=SC2086
  $b bud $build_flags --from "localhost/rust-standin:$version" -v "$sysroot:$toolchain:ro" .
  echo "build.sh: the Dockerfile built from the stand-in for $base"
fi

# --- the image as Fargate runs it ---
user=$($b inspect --format '{{.OCIv1.Config.User}}' localhost/iam-audit:ci)
volumes=$($b inspect --format '{{.OCIv1.Config.Volumes}}' localhost/iam-audit:ci)
env=$($b inspect --format '{{range .OCIv1.Config.Env}}{{.}} {{end}}' localhost/iam-audit:ci)
[ "$user" = "10001:10001" ] || { echo "build.sh: the image runs as '$user', not 10001:10001" >&2; exit 1; }
container=$($b from localhost/iam-audit:ci)
rootfs=$($b mount "$container")
if ldd "$rootfs/iam-audit" 2>&1 | grep -q "=>"; then
  echo "build.sh: the image's binary is dynamically linked; the base is empty" >&2
  exit 1
fi

# A fresh task volume at /tmp: root-owned 0755, then filled from the image where it declares the path.
task_volume() {
  vol=$(mktemp -d "$work/volume.XXXXXX")
  chown 0:0 "$vol" && chmod 0755 "$vol"
  if [ "$1" = declared ] && printf '%s' "$volumes" | grep -q '/tmp:'; then
    cp -a "$rootfs/tmp/." "$vol/"
  fi
  echo "$vol"
}

# Run the image's entrypoint with ARGS as a container runtime does: PID 1 of its own PID and mount
# namespaces, /proc and a /dev of the usual devices (null, zero, random, urandom) mounted, the root
# read-only, VOL at /tmp, user 10001, only the image's environment and EXTRA variables.
mkdir -p "$rootfs/dev" "$rootfs/proc"
run_in_image() {
  vol=$1; extra=$2; shift 2
  # shellcheck disable=SC2086
  unshare --mount --pid --fork --kill-child sh -c '
    rootfs=$1; vol=$2; shift 2
    mount --bind "$rootfs" "$rootfs" &&
      mount -t tmpfs -o mode=0755,nosuid tmpfs "$rootfs/dev" &&
      for d in null zero random urandom; do
        touch "$rootfs/dev/$d" && mount --bind "/dev/$d" "$rootfs/dev/$d" || exit 1
      done &&
      mount -t proc proc "$rootfs/proc" &&
      mount -o remount,bind,ro "$rootfs" &&
      mount --bind "$vol" "$rootfs/tmp" && exec "$@"' \
    sh "$rootfs" "$vol" env -i $env $extra chroot --userspec=10001:10001 "$rootfs" /iam-audit "$@"
}

# The image runs, and its root is read-only: a run asked to write there says so.
vol=$(task_volume declared)
echo "build.sh: $(run_in_image "$vol" "" --version) runs in the image"
set +e
run_in_image "$vol" "" demo --accounts 2 --output-dir /reports --no-progress >"$work/ro.log" 2>&1
rc=$?
set -e
echo "build.sh: writing to the read-only root: exit $rc: $(grep -m1 'error:' "$work/ro.log" || true)"
[ "$rc" -ne 0 ] && grep -q "Read-only file system" "$work/ro.log" || { cat "$work/ro.log" >&2; exit 1; }

# demo writes its nine files to /tmp/demo as user 10001. It exits 3: its simulated organization has
# accounts that deny the role (a coverage finding).
set +e
run_in_image "$vol" "" demo --accounts 12 --output-dir /tmp/demo --no-progress >"$work/demo.log" 2>&1
rc=$?
set -e
# The nine reports (beside them the findings' history, a dotfile).
n=$(find "$vol/demo" -type f ! -name '.*' 2>/dev/null | wc -l)
owner=$(stat -c %u "$vol/demo" 2>/dev/null || echo none)
echo "build.sh: demo in the image: exit $rc, $n files as uid $owner"
[ "$rc" -eq 3 ] && [ "$n" -eq 9 ] && [ "$owner" -eq 10001 ] || { cat "$work/demo.log" >&2; exit 1; }

# The same to S3 (moto's, from the test venv): the staging directory under /tmp, nothing left there.
venv="${IAM_AUDIT_TEST_VENV:-$target/test-venv}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
s3() {
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 "$venv/bin/python" -c "
import boto3, sys
s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:$port')
$1"
}
for _ in $(seq 1 100); do s3 "s3.list_buckets()" 2>/dev/null && break; sleep 0.2; done
s3 "s3.create_bucket(Bucket='image-reports')"
to_s3="AWS_ENDPOINT_URL_S3=http://127.0.0.1:$port"
vol=$(task_volume declared)
set +e
run_in_image "$vol" "$to_s3" demo --accounts 12 --output-dir s3://image-reports/fargate/ --no-progress >"$work/s3.log" 2>&1
rc=$?
set -e
objects=$(s3 "print(len([o for o in s3.list_objects_v2(Bucket='image-reports', Prefix='fargate/').get('Contents', []) if not o['Key'].split('/')[-1].startswith('.')]))")
left=$(find "$vol" -mindepth 1 | wc -l)
echo "build.sh: demo to S3 in the image: exit $rc, $objects objects, $left entries left in /tmp"
[ "$rc" -eq 3 ] && [ "$objects" -eq 9 ] && [ "$left" -eq 0 ] || { cat "$work/s3.log" >&2; exit 1; }

# Without the VOLUME declaration Fargate's /tmp stays root-owned: the run stops before any account, and
# says why.
vol=$(task_volume undeclared)
set +e
run_in_image "$vol" "$to_s3" demo --accounts 12 --output-dir s3://image-reports/undeclared/ --no-progress >"$work/undeclared.log" 2>&1
rc=$?
set -e
echo "build.sh: with a root-owned /tmp: exit $rc: $(grep -m1 'error:' "$work/undeclared.log" || true)"
[ "$rc" -eq 1 ] && grep -q "cannot create a private staging directory in /tmp (TMPDIR): Permission denied" "$work/undeclared.log" \
  && grep -q "declare /tmp a VOLUME" "$work/undeclared.log" || { cat "$work/undeclared.log" >&2; exit 1; }

# SIGTERM (an ECS stop, a Kubernetes eviction) ends the run as exit 143, its files flushed.
vol=$(task_volume declared)
run_in_image "$vol" "" demo --accounts 400 --output-dir /tmp/stopped --no-progress >/dev/null 2>&1 &
runner=$!
pid=""
for _ in $(seq 1 100); do
  pid=$(pgrep -f "^/iam-audit demo --accounts 400" | head -n 1 || true)
  [ -n "$pid" ] && [ -d "$vol/stopped" ] && break
  sleep 0.1
done
sleep 2
kill -TERM "$pid"
set +e
wait "$runner"
rc=$?
set -e
n=$(find "$vol/stopped" -type f ! -name '.*' | wc -l)
echo "build.sh: SIGTERM in the image: exit $rc, $n files"
[ "$rc" -eq 143 ] && [ "$n" -eq 9 ]
