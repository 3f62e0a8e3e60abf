#!/bin/sh
# Build the image's runtime stage (deploy/container/Containerfile.runtime) from a static iam-audit binary,
# then run `iam-audit demo` in it as its own user, writing to a mounted directory: what CI does to check
# the image, with buildah (Debian's package; no daemon, no registry: the base is `scratch`).
#
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target x86_64-unknown-linux-gnu
#   deploy/container/build.sh target/x86_64-unknown-linux-gnu/release/iam-audit
set -eu
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ctx/out/etc/ssl/certs" "$work/ctx/out/tmp" "$work/reports"
chmod 1777 "$work/ctx/out/tmp"
cp "$bin" "$work/ctx/out/iam-audit"
cp /etc/ssl/certs/ca-certificates.crt "$work/ctx/out/etc/ssl/certs/ca-certificates.crt"
echo 'iam-audit:x:10001:10001:iam-audit:/tmp:/iam-audit' > "$work/ctx/out/etc/passwd"
echo 'iam-audit:x:10001:' > "$work/ctx/out/etc/group"
# The binary must need no library: the base image is empty.
if ldd "$bin" 2>&1 | grep -q "=>"; then
  echo "build.sh: $bin is dynamically linked; build it with crt-static" >&2
  exit 1
fi
b="buildah --storage-driver vfs"
$b bud --isolation chroot -f "$here/Containerfile.runtime" -t localhost/iam-audit:ci "$work/ctx"
c=$($b from localhost/iam-audit:ci)
trap '$b rm "$c" >/dev/null 2>&1; rm -rf "$work"' EXIT
chmod 0777 "$work/reports"
# Whether this machine can run a container at all (chroot isolation needs mount rights): where it cannot,
# the image is built but not run, and that is said.
if ! probe=$($b run --isolation chroot "$c" -- /iam-audit --version 2>&1); then
  echo "build.sh: the image is built, but this machine cannot run a container: $probe" >&2
  exit 0
fi
echo "build.sh: $probe runs in the image"
set +e
$b run --isolation chroot --mount type=tmpfs,destination=/tmp -v "$work/reports:/reports" "$c" -- \
  /iam-audit demo --accounts 12 --output-dir /reports/demo --no-progress
rc=$?
set -e
# demo exits 3: its simulated organization has accounts that deny the role (a coverage finding).
if [ "$rc" -ne 3 ]; then
  echo "build.sh: demo in the image exited $rc, not 3" >&2
  exit 1
fi
n=$(find "$work/reports/demo" -type f | wc -l)
owner=$(stat -c %u "$work/reports/demo")
echo "build.sh: demo in the image wrote $n files as uid $owner"
[ "$n" -eq 9 ] && [ "$owner" -eq 10001 ]

# SIGTERM (an ECS stop, a Kubernetes eviction) ends the run as exit 143, its files flushed.
$b run --isolation chroot --mount type=tmpfs,destination=/tmp -v "$work/reports:/reports" "$c" -- \
  /iam-audit demo --accounts 400 --output-dir /reports/stopped --no-progress >/dev/null 2>&1 &
runner=$!
pid=""
for _ in $(seq 1 100); do
  pid=$(pgrep -f "^/iam-audit demo --accounts 400" | head -1 || true)
  [ -n "$pid" ] && [ -d "$work/reports/stopped" ] && break
  sleep 0.1
done
sleep 2
kill -TERM "$pid"
set +e
wait "$runner"
rc=$?
set -e
n=$(find "$work/reports/stopped" -type f | wc -l)
echo "build.sh: SIGTERM in the image: exit $rc, $n files"
[ "$rc" -eq 143 ] && [ "$n" -eq 9 ]
