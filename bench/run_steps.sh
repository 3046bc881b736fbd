#!/usr/bin/env bash
# Per-RUN overhead of our sandbox against buildah (chroot and oci isolation), in one run.
#
# Cases: 10 trivial RUN steps (`true`), and one RUN writing 100 MB.
#
# Our side: the Dockerfile build driver is not merged yet, so each RUN is one call of
# `isula_build::sandbox::run` through the binary's hidden hook
# (`isula-build __isula-build-sandbox-run SPEC.json`): a fresh upper dir over a busybox rootfs
# per step, exactly what the driver will do per RUN (minus the layer commit). Built-in sandbox
# and runc delegation are both measured.
# buildah's side: `buildah bud` of equivalent Dockerfiles FROM the same busybox rootfs; its per
# RUN cost is (build with the RUNs - build of the same Dockerfile without them) / count.
#
# Usage: bench/run_steps.sh [REPEATS]   (root; ISULA_BUILD_BIN=path to the binary)
# Prints medians in ms and the ratios ours/buildah.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
bin=${ISULA_BUILD_BIN:-}
if [ -z "$bin" ]; then
    for c in "${CARGO_TARGET_DIR:-target}/release/isula-build" "${CARGO_TARGET_DIR:-target}/debug/isula-build"; do
        [ -x "$c" ] && { bin=$c; break; }
    done
fi
[ -x "${bin:-}" ] || { echo "build isula-build first (or set ISULA_BUILD_BIN)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
command -v buildah >/dev/null || { echo "buildah is not installed (apt-get install -y buildah runc)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/isula-bench-run.XXXXXX)
cleanup() {
    buildah --root "$work/bstore" --runroot "$work/brun" rm -a >/dev/null 2>&1 || true
    buildah --root "$work/bstore" --runroot "$work/brun" rmi -a -f >/dev/null 2>&1 || true
    umount -R "$work/bstore/overlay" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

bash scripts/make-busybox-rootfs.sh "$work/bb.tar"
mkdir -p "$work/rootfs"
tar -C "$work/rootfs" -xf "$work/bb.tar"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# --- ours -------------------------------------------------------------------------------
# prepare_step NAME RUNTIME(json) SCRIPT: a fresh upper/work dir and the spec file.
prepare_step() {
    local d=$work/ours/$1
    mkdir -p "$d/upper" "$d/work"
    python3 - "$d" "$2" "$3" "$work/rootfs" > "$d.json" <<'EOF'
import json, sys
d, rt, script, lower = sys.argv[1:5]
print(json.dumps({"lower_dirs": [lower], "upper_dir": d + "/upper", "work_dir": d + "/work",
                  "args": ["/bin/sh", "-c", script], "env": [], "cwd": "", "user": "",
                  "hostname": "bench", "cap_add": [], "runtime": json.loads(rt),
                  "bundle_dir": d + "/bundle"}))
EOF
}

# ours_case RUNTIME(json) COUNT SCRIPT -> total ms of COUNT steps (spec files written first,
# outside the timing; each step is one process calling sandbox::run once)
ours_case() {
    local t0 t1 i
    rm -rf "$work/ours"
    mkdir -p "$work/ours"
    for i in $(seq 1 "$2"); do prepare_step "s$i" "$1" "$3"; done
    sync
    t0=$(now_ms)
    for i in $(seq 1 "$2"); do "$bin" __isula-build-sandbox-run "$work/ours/s$i.json"; done
    t1=$(now_ms)
    rm -rf "$work/ours"
    echo $((t1 - t0))
}

# --- buildah ----------------------------------------------------------------------------
mkdir -p "$work/bconf" "$work/docker"
echo '{}' > "$work/docker/config.json"
cat > "$work/bconf/containers.conf" <<EOF
[containers]
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat > "$work/bconf/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/bstore"
runroot = "$work/brun"
EOF
printf 'unqualified-search-registries = []\n' > "$work/bconf/registries.conf"
export CONTAINERS_CONF=$work/bconf/containers.conf
export CONTAINERS_STORAGE_CONF=$work/bconf/storage.conf
export CONTAINERS_REGISTRIES_CONF=$work/bconf/registries.conf
export DOCKER_CONFIG=$work/docker
B=(buildah --root "$work/bstore" --runroot "$work/brun" --storage-driver overlay)

ctr=$("${B[@]}" from scratch)
mnt=$("${B[@]}" mount "$ctr")
tar -C "$mnt" -xf "$work/bb.tar"
"${B[@]}" umount "$ctr" >/dev/null
"${B[@]}" commit -q "$ctr" localhost/bench-busybox >/dev/null
"${B[@]}" rm "$ctr" >/dev/null

mkdir -p "$work/ctx"
{ echo "FROM localhost/bench-busybox"; echo "LABEL bench=base"; } > "$work/ctx/Dockerfile.base"
{ echo "FROM localhost/bench-busybox"; echo "LABEL bench=base"; for _ in $(seq 10); do echo "RUN true"; done; } > "$work/ctx/Dockerfile.ten"
{ echo "FROM localhost/bench-busybox"; echo "LABEL bench=base"; echo "RUN dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null"; } > "$work/ctx/Dockerfile.big"

# buildah_case ISOLATION DOCKERFILE -> ms
buildah_case() {
    local t0 t1 net=()
    [ "$1" = oci ] && net=(--network none)
    t0=$(now_ms)
    "${B[@]}" bud -q --isolation "$1" "${net[@]}" --layers=false -f "$work/ctx/$2" -t "localhost/bench-out" "$work/ctx" >/dev/null
    t1=$(now_ms)
    "${B[@]}" rmi -f localhost/bench-out >/dev/null 2>&1 || true
    echo $((t1 - t0))
}

declare -A res
measure() { # KEY COMMAND...
    local key=$1 i v=()
    shift
    for i in $(seq 1 "$reps"); do v+=("$("$@")"); done
    res[$key]=$(printf '%s\n' "${v[@]}" | median)
}

echo "binary: $bin; repeats: $reps (medians)" >&2
measure ours_ten ours_case null 10 true
measure ours_big ours_case null 1 "dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null"
if command -v runc >/dev/null; then
    measure runc_ten ours_case '"runc"' 10 true
    measure runc_big ours_case '"runc"' 1 "dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null"
fi
for iso in chroot oci; do
    measure "b_${iso}_base" buildah_case "$iso" Dockerfile.base
    measure "b_${iso}_ten" buildah_case "$iso" Dockerfile.ten
    measure "b_${iso}_big" buildah_case "$iso" Dockerfile.big
done

per() { awk -v a="$1" -v n="$2" 'BEGIN { v = a / n; if (v < 0.1) v = 0.1; printf "%.1f", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

ours_triv=$(per "${res[ours_ten]}" 10)
ours_big=$(per "${res[ours_big]}" 1)
printf '\n%-34s %12s %12s\n' "case" "trivial RUN" "100 MB RUN"
printf '%-34s %9s ms %9s ms\n' "ours (built-in sandbox)" "$ours_triv" "$ours_big"
if [ -n "${res[runc_ten]:-}" ]; then
    printf '%-34s %9s ms %9s ms\n' "ours (runtime = runc)" "$(per "${res[runc_ten]}" 10)" "$(per "${res[runc_big]}" 1)"
fi
for iso in chroot oci; do
    bt=$(per $(( res[b_${iso}_ten] - res[b_${iso}_base] )) 10)
    bb=$(per $(( res[b_${iso}_big] - res[b_${iso}_base] )) 1)
    printf '%-34s %9s ms %9s ms\n' "buildah --isolation $iso" "$bt" "$bb"
    printf '%-34s %12s %12s\n' "  ratio ours/buildah-$iso" "$(ratio "$ours_triv" "$bt")" "$(ratio "$ours_big" "$bb")"
done
printf '\n(buildah per RUN = (build with the RUNs - build without) / RUN count; build without RUN: chroot %s ms, oci %s ms)\n' \
    "${res[b_chroot_base]}" "${res[b_oci_base]}"
