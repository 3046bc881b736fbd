#!/usr/bin/env bash
# Benchmark of `ctr-img save` / `ctr-img load` against podman and cp, in one run.
#
# Builds a ~1 GB rootfs (one 450 MiB file of random bytes plus 8000 files of 60 KiB),
# imports it into our store and into podman's, then times (median of RUNS, default 3):
#   ours   save (docker-archive) / load of that archive into an empty data root
#   podman save (docker-archive) / load of the same archive into empty storage
#   cp     of the same archive (the physical floor of writing it)
#   sha256 of the same archive by OpenSSL (the floor of verifying it: load hashes every
#          byte, and one SHA-256 stream cannot be split across cores)
# with peak RSS from /usr/bin/time -v. Needs root, podman, GNU time.
#
#   bench/save_load.sh [path/to/isula-build]      (default: target/release/isula-build)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/isula-build}
RUNS=${RUNS:-3}
W=$(mktemp -d /var/tmp/isula-bench-XXXXXX)
trap '"${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true; rm -rf "$W"' EXIT

# Commands as arrays so /usr/bin/time can run them.
PODMAN=(env CONTAINERS_CONF="$W/pm/containers.conf" CONTAINERS_STORAGE_CONF="$W/pm/storage.conf"
        CONTAINERS_REGISTRIES_CONF="$W/pm/registries.conf" DOCKER_CONFIG="$W/pm/dc" podman)
OURS=("$BIN" --runroot "$W/run" --config "$W/conf")
mkdir -p "$W/pm/dc"; echo '{}' > "$W/pm/dc/config.json"
printf '[containers]\nnetns="none"\n[engine]\nruntime="runc"\ncgroup_manager="cgroupfs"\nevents_logger="file"\n' > "$W/pm/containers.conf"
printf '[storage]\ndriver="overlay"\ngraphroot="%s/pm/graph"\nrunroot="%s/pm/run"\n' "$W" "$W" > "$W/pm/storage.conf"
echo 'unqualified-search-registries = []' > "$W/pm/registries.conf"

echo "== building the rootfs" >&2
mkdir -p "$W/rootfs/data/many" "$W/rootfs/big"
head -c $((450 * 1024 * 1024)) /dev/urandom > "$W/rootfs/big/blob"
head -c $((60 * 1024 * 8000)) /dev/urandom > "$W/src"
split -b $((60 * 1024)) -a 4 -d "$W/src" "$W/rootfs/data/many/f"
rm "$W/src"
tar --numeric-owner -C "$W/rootfs" -cf "$W/rootfs.tar" .
rm -rf "$W/rootfs"
ls -l "$W/rootfs.tar" >&2

mkdir -p "$W/conf"
"${OURS[@]}" --dataroot "$W/d0" ctr-img import "$W/rootfs.tar" bench:latest >/dev/null
"${PODMAN[@]}" import -q "$W/rootfs.tar" localhost/bench:latest >/dev/null
rm -f "$W/rootfs.tar"

# time_it LABEL CMD... : appends "LABEL seconds peak_kb" to $W/times
time_it() {
    local label=$1; shift
    sync # nothing left dirty by an earlier run for this one's syncs to pay for
    /usr/bin/time -f "%e %M" -o "$W/t" "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
    echo "$label $(cat "$W/t")" >> "$W/times"
}

for i in $(seq "$RUNS"); do
    echo "== run $i" >&2
    rm -f "$W/ours.tar" "$W/podman.tar" "$W/cp.tar"; rm -rf "$W/d1"
    time_it ours-save "${OURS[@]}" --dataroot "$W/d0" ctr-img save bench:latest -o "$W/ours.tar"
    time_it ours-load "${OURS[@]}" --dataroot "$W/d1" ctr-img load -i "$W/ours.tar"
    time_it podman-save "${PODMAN[@]}" save -o "$W/podman.tar" localhost/bench:latest
    "${PODMAN[@]}" rmi -f localhost/bench:latest >/dev/null
    time_it podman-load "${PODMAN[@]}" load -i "$W/podman.tar"
    time_it cp cp "$W/ours.tar" "$W/cp.tar"
    time_it sha256 openssl dgst -sha256 "$W/ours.tar"
done
size=$(stat -c %s "$W/ours.tar")

median() { grep "^$1 " "$W/times" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
peak() { grep "^$1 " "$W/times" | awk '{print $3}' | sort -n | tail -1; }
cpt=$(median cp)
echo
echo "archive: $((size / 1024 / 1024)) MiB; median of $RUNS runs; peak RSS is the max over runs"
echo
printf '| %-12s | %9s | %9s | %9s | %12s |\n' case seconds "x cp" "x podman" "peak RSS MB"
printf '|%s|%s|%s|%s|%s|\n' -------------- ----------- ----------- ----------- --------------
for op in save load; do
    for who in ours podman; do
        t=$(median "$who-$op"); p=$(median "podman-$op")
        printf '| %-12s | %9s | %9.2f | %9.2f | %12d |\n' "$who $op" "$t" \
            "$(echo "$t / $cpt" | bc -l)" "$(echo "$t / $p" | bc -l)" $(( $(peak "$who-$op") / 1024 ))
    done
done
printf '| %-12s | %9s | %9.2f | %9s | %12d |\n' "cp" "$cpt" 1 - $(( $(peak cp) / 1024 ))
sht=$(median sha256)
printf '| %-12s | %9s | %9.2f | %9s | %12d |\n' "sha256" "$sht" "$(echo "$sht / $cpt" | bc -l)" - $(( $(peak sha256) / 1024 ))
