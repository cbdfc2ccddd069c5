#!/usr/bin/env bash
# Tests the binary the Docker image holds, run the way the image runs it, without a container
# daemon: a static CGO_ENABLED=0 build, started as an unprivileged user (65534) in a mount
# namespace whose root file system is read-only, with only the data directory writable. The
# node must become healthy, serve the API, write its store under the data directory and stop
# cleanly on SIGTERM. Needs root (unshare, mount, setpriv); .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
chmod 0755 "$work"
bin="$work/aviso"
data="$work/data"

CGO_ENABLED=0 go build -ldflags="-s -w" -o "$bin" ./cmd/aviso
if readelf -l "$bin" | grep -q 'Requesting program interpreter' || readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
  echo "check-image: $bin is not a static binary"; exit 1
fi

mkdir -m 0700 "$data"
chown 65534:65534 "$data"
port=$(( 20000 + RANDOM % 20000 ))
key="avk_image_check_$(date +%s%N)"
url="http://127.0.0.1:$port"

# The data directory is bind-mounted onto itself (so it stays writable), then every other
# mount the node could write to is made read-only in this namespace only.
unshare --mount --propagation private sh -c '
  set -e
  mount --bind "$1" "$1"
  for m in / /tmp /var/tmp /dev/shm; do
    if mountpoint -q "$m"; then mount -o remount,bind,ro "$m"; fi
  done
  exec setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs --inh-caps=-all \
    env -i PATH=/usr/bin:/bin AVISO_ADDR="$2" AVISO_DATA_DIR="$1" AVISO_ROOT_KEY="$3" "$4" serve
' sh "$data" "127.0.0.1:$port" "$key" "$bin" >"$work/out.log" 2>&1 &
pid=$!

healthy=""
for _ in $(seq 1 120); do
  if setpriv --reuid=65534 --regid=65534 --clear-groups "$bin" healthcheck --ready --url "$url" >/dev/null 2>&1; then healthy=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
if [ -z "$healthy" ]; then echo "check-image: the node did not become ready:"; cat "$work/out.log"; exit 1; fi

code=$(curl -s -o "$work/tenant.json" -w '%{http_code}' -X POST "$url/v1/tenants" \
  -H "Authorization: Bearer $key" -d '{"id":"image-check","name":"Image check"}')
if [ "$code" != 201 ]; then echo "check-image: create tenant answered $code: $(cat "$work/tenant.json")"; cat "$work/out.log"; exit 1; fi

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
if [ "$status" != 0 ]; then echo "check-image: serve exited $status on SIGTERM:"; cat "$work/out.log"; exit 1; fi
if [ "$(stat -c %u "$data/aviso.db")" != 65534 ]; then echo "check-image: $data/aviso.db is missing or not the node's"; exit 1; fi
if grep -qi 'read-only file system' "$work/out.log"; then echo "check-image: the node tried to write outside its data directory:"; cat "$work/out.log"; exit 1; fi
echo "check-image: static binary ran as uid 65534 on a read-only root, wrote only $data: ok"
