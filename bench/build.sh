#!/usr/bin/env bash
# Build benchmark: the same Dockerfiles built by this project, by buildah and (when dockerd
# can start here) by Docker BuildKit, in one run, on the same busybox base image.
# Prints median wall seconds of 3 runs, peak RSS, and the ratio ours / fastest peer.
# Usage: bench/build.sh [RUNS]      (needs root; installs nothing — see PEERS.md)
# ISULA_BUILD=path uses that binary instead of building one (honours CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=$(mktemp -d /var/tmp/ib-bench.XXXXXX)
trap 'cleanup' EXIT
cleanup() {
    [ -n "${dockerd_pid:-}" ] && kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
    umount -R "$work"/docker/data/overlay2/*/merged 2>/dev/null || true
    rm -rf "$work"
}
if [ -n "${ISULA_BUILD:-}" ]; then
    ours=$(realpath "$ISULA_BUILD")
else
    cargo build --release --locked -q
    ours=$(realpath "${CARGO_TARGET_DIR:-target}")/release/isula-build
fi
scripts/make-busybox-rootfs.sh "$work/busybox.tar"

# --- contexts ---------------------------------------------------------------------------
mkdir -p "$work/ctx/many" "$work/ctx/big" "$work/ctx/multi"
python3 - "$work/ctx/many" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(200):
    p = os.path.join(root, "src", f"d{d:03}")
    os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, f"f{f:03}"), "wb") as fh:
            fh.write(os.urandom(10 * 1024))
PY
printf 'FROM busybox\nCOPY src /src\n' > "$work/ctx/many/Dockerfile"
head -c 500M /dev/urandom > "$work/ctx/big/big.bin"
printf 'FROM scratch\nCOPY big.bin /big.bin\n' > "$work/ctx/big/Dockerfile"
head -c 20M /dev/urandom > "$work/ctx/multi/data.bin"
cat > "$work/ctx/multi/Dockerfile" <<'DF'
FROM busybox AS one
COPY data.bin /one/data.bin
FROM busybox AS two
COPY --from=one /one /two
FROM scratch
COPY --from=two /two /three
COPY --from=one /one/data.bin /three/again.bin
DF

# --- peers ------------------------------------------------------------------------------
export CONTAINERS_STORAGE_CONF=$work/storage.conf CONTAINERS_CONF=$work/containers.conf
export CONTAINERS_REGISTRIES_CONF=$work/registries.conf DOCKER_CONFIG=$work/dockercfg
mkdir -p "$DOCKER_CONFIG" && echo '{}' > "$DOCKER_CONFIG/config.json"
printf '[storage]\ndriver="overlay"\nrunroot="%s/c-run"\ngraphroot="%s/c-root"\n' "$work" "$work" > "$CONTAINERS_STORAGE_CONF"
printf '[engine]\nruntime="runc"\ncgroup_manager="cgroupfs"\nevents_logger="file"\n[containers]\nnetns="none"\n' > "$CONTAINERS_CONF"
printf 'unqualified-search-registries = []\n' > "$CONTAINERS_REGISTRIES_CONF"
have_buildah=0
if command -v buildah >/dev/null && buildah --storage-driver overlay from --name bb-import scratch >/dev/null 2>&1; then
    buildah rm bb-import >/dev/null
    podman import "$work/busybox.tar" localhost/busybox:latest >/dev/null 2>&1 && buildah tag localhost/busybox:latest busybox >/dev/null 2>&1 && have_buildah=1
fi
have_docker=0
if command -v dockerd >/dev/null; then
    mkdir -p "$work/docker"
    dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" -H "unix://$work/docker/docker.sock" \
        --pidfile "$work/docker/pid" --storage-driver overlay2 --bridge=none --iptables=false --ip6tables=false \
        --ip-forward=false --ip-masq=false >"$work/docker/log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 50); do [ -S "$work/docker/docker.sock" ] && break; sleep 0.2; done
    export DOCKER_HOST=unix://$work/docker/docker.sock
    if /usr/bin/docker import "$work/busybox.tar" busybox:latest >/dev/null 2>&1; then have_docker=1; fi
fi
D="--dataroot $work/ours/data --runroot $work/ours/run"
"$ours" $D ctr-img import "$work/busybox.tar" busybox >/dev/null

# --- timing -----------------------------------------------------------------------------
measure() { # prints "seconds peak_kb" of the median run
    local out=() i
    for i in $(seq "$runs"); do
        # Every tool starts with nothing dirty: ours syncs its data before publishing, and
        # syncfs would otherwise also pay for what an earlier run (or peer) left to write.
        sync
        /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || { echo "FAILED"; cat "$work/err" >&2; return; }
        out+=("$(cat "$work/t")")
    done
    printf '%s\n' "${out[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}
printf '%-14s %16s %16s %16s %8s\n' case "ours s (MB)" "buildah s (MB)" "buildkit s (MB)" ratio
for c in many big multi; do
    o=$(measure "$ours" $D ctr-img build "$work/ctx/$c")
    b="-"; k="-"
    [ $have_buildah = 1 ] && b=$(measure buildah bud --isolation chroot --layers=false -t "bench-$c" "$work/ctx/$c")
    [ $have_docker = 1 ] && k=$(DOCKER_BUILDKIT=1 measure /usr/bin/docker build --no-cache -q "$work/ctx/$c")
    best=$(printf '%s\n%s\n' "$b" "$k" | awk '$1 ~ /^[0-9.]+$/ {print $1}' | sort -n | head -1)
    ratio=$(awk -v o="${o%% *}" -v b="${best:-0}" 'BEGIN { if (b > 0) printf "%.2f", o / b; else print "-" }')
    fmt() { [ "$1" = "-" ] && echo "-" || awk '{ printf "%.2f (%d)", $1, $2 / 1024 }' <<<"$1"; }
    printf '%-14s %16s %16s %16s %8s\n' "$c" "$(fmt "$o")" "$(fmt "$b")" "$(fmt "$k")" "$ratio"
done
