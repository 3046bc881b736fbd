#!/usr/bin/env bash
# Push and pull of a ~500 MB image with 5 layers to/from a local docker-registry:
# isula-build vs skopeo copy, in the same run, on the same machine. Not a timed test.
#
# Usage: bench/registry.sh [RUNS]   (default 3; prints a markdown table of medians)
# Needs: docker-registry, skopeo (apt-get install -y docker-registry skopeo), a release build
# (cargo build --release; set ISULA_BUILD=path to use another binary).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
bin=${ISULA_BUILD:-${CARGO_TARGET_DIR:-target}/release/isula-build}
for t in docker-registry skopeo gzip; do
    command -v "$t" >/dev/null || { echo "SKIP bench/registry.sh: $t not installed" >&2; exit 0; }
done
[ -x "$bin" ] || { echo "no binary at $bin (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/isula-bench-reg.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { local p; while :; do p=$((20000 + RANDOM % 30000)); (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }; done; }
start_registry() { # name; sets $port (not in a subshell: the pid must reach the cleanup list)
    local name=$1; port=$(free_port)
    mkdir -p "$work/$name"
    cat > "$work/$name/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/$name/data
http:
  addr: 127.0.0.1:$port
YML
    docker-registry serve "$work/$name/config.yml" >/dev/null 2>"$work/$name/log" &
    pids+=($!)
    for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
}
start_registry src
src_port=$port
src=127.0.0.1:$src_port

echo "== making a 5-layer image of ~500 MB (half random, half text per layer)" >&2
layout=$work/layout
mkdir -p "$layout/blobs/sha256"
diff_ids=() layers_json=()
for i in 1 2 3 4 5; do
    d=$work/l$i; mkdir -p "$d/data$i"
    head -c 50000000 /dev/urandom > "$d/data$i/random.bin"
    (set +o pipefail; seq 1 7000000 | sed "s/^/layer $i line /" | head -c 50000000) > "$d/data$i/text.txt"
    tar -C "$d" --numeric-owner --owner=0 --group=0 -cf "$work/l$i.tar" "data$i"
    rm -rf "$d"
    diff_ids+=("\"sha256:$(sha256sum "$work/l$i.tar" | cut -d' ' -f1)\"")
    gzip -1 -n -c "$work/l$i.tar" > "$work/l$i.tgz"
    h=$(sha256sum "$work/l$i.tgz" | cut -d' ' -f1); s=$(stat -c %s "$work/l$i.tgz")
    cp "$work/l$i.tgz" "$layout/blobs/sha256/$h"
    layers_json+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"size\":$s,\"digest\":\"sha256:$h\"}")
done
join() { local IFS=,; echo "$*"; }
arch=$(uname -m); case $arch in x86_64) arch=amd64;; aarch64) arch=arm64;; esac
printf '{"architecture":"%s","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$arch" "$(join "${diff_ids[@]}")" > "$work/config.json"
ch=$(sha256sum "$work/config.json" | cut -d' ' -f1); cs=$(stat -c %s "$work/config.json"); mv "$work/config.json" "$layout/blobs/sha256/$ch"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%s,"digest":"sha256:%s"},"layers":[%s]}' "$cs" "$ch" "$(join "${layers_json[@]}")" > "$work/manifest.json"
mh=$(sha256sum "$work/manifest.json" | cut -d' ' -f1); ms=$(stat -c %s "$work/manifest.json"); mv "$work/manifest.json" "$layout/blobs/sha256/$mh"
printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":%s,"digest":"sha256:%s"}]}' "$ms" "$mh" > "$layout/index.json"
total=$(du -sb "$layout/blobs" | cut -f1)
echo "== image: 500 MB of files, $((total / 1000000)) MB compressed; seeding the source registry" >&2
skopeo copy -q --dest-tls-verify=false "oci:$layout" "docker://$src/bench/img:v1" >/dev/null
rm -rf "$layout"

conf=$work/conf; mkdir -p "$conf"
printf '[registries.insecure]\nregistries = ["%s"]\n' "$src" > "$conf/registries.toml"
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; e=$(date +%s.%N); awk -v a="$s" -v b="$e" 'BEGIN {printf "%.3f", b - a}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

ours_pull=() ours_push=() sk_pull=() sk_push=() ours_tpush=() sk_tpush=() floor=()
for r in $(seq "$runs"); do
    echo "== run $r/$runs" >&2
    rm -rf "$work/d" "$work/r" "$work/oci"; sync
    ours_pull+=("$(t "$bin" --dataroot "$work/d" --runroot "$work/r" --config "$conf" ctr-img pull "$src/bench/img:v1")")
    # Each push goes to a registry started empty for it: no blob is there to skip or mount
    # (skopeo keeps its own blob-info cache and would mount from an earlier run's repository).
    start_registry "dst-ours-$r"; dst=127.0.0.1:$port
    printf '[registries.insecure]\nregistries = ["%s", "%s"]\n' "$src" "$dst" > "$conf/registries.toml"
    "$bin" --dataroot "$work/d" --runroot "$work/r" --config "$conf" ctr-img tag "$src/bench/img:v1" "$dst/bench/ours:v1" >/dev/null
    sync
    ours_push+=("$(t "$bin" --dataroot "$work/d" --runroot "$work/r" --config "$conf" ctr-img push "$dst/bench/ours:v1")")
    sync
    sk_pull+=("$(t skopeo copy -q --src-tls-verify=false "docker://$src/bench/img:v1" "oci:$work/oci:v1")")
    # The hashing a verifying pull cannot avoid: every compressed blob and every tar once
    # (OpenSSL SHA-256, one process per file, all cores), files already in the page cache.
    cat "$work"/l?.tgz "$work"/l?.tar > /dev/null
    floor+=("$(t sh -c "ls '$work'/l?.tgz '$work'/l?.tar | xargs -P $(nproc) -n 1 openssl dgst -sha256")")
    start_registry "dst-skopeo-$r"; dst=127.0.0.1:$port
    sync
    sk_push+=("$(t skopeo copy -q --dest-tls-verify=false "oci:$work/oci:v1" "docker://$dst/bench/skopeo:v1")")
    # The same image with its layers stored as uncompressed tars (as a build, an import or a
    # load of a docker-archive stores them): both sides compress while pushing.
    if [ "$r" = 1 ]; then
        "$bin" --dataroot "$work/d" --runroot "$work/r" --config "$conf" ctr-img save "$src/bench/img:v1" -o "$work/plain.tar" >/dev/null
    fi
    rm -rf "$work/dt"
    "$bin" --dataroot "$work/dt" --runroot "$work/r" --config "$conf" ctr-img load -i "$work/plain.tar" >/dev/null
    start_registry "dst-ours-t-$r"; dst=127.0.0.1:$port
    printf '[registries.insecure]\nregistries = ["%s", "%s"]\n' "$src" "$dst" > "$conf/registries.toml"
    "$bin" --dataroot "$work/dt" --runroot "$work/r" --config "$conf" ctr-img tag "$src/bench/img:v1" "$dst/bench/ours:t" >/dev/null
    sync
    ours_tpush+=("$(t "$bin" --dataroot "$work/dt" --runroot "$work/r" --config "$conf" ctr-img push "$dst/bench/ours:t")")
    start_registry "dst-skopeo-t-$r"; dst=127.0.0.1:$port
    sync
    sk_tpush+=("$(t skopeo copy -q --dest-tls-verify=false "docker-archive:$work/plain.tar" "docker://$dst/bench/skopeo:t")")
done
rm -rf "$work/d"
p_o=$(median "${ours_pull[@]}"); p_s=$(median "${sk_pull[@]}"); p_f=$(median "${floor[@]}")
u_o=$(median "${ours_push[@]}"); u_s=$(median "${sk_push[@]}")
t_o=$(median "${ours_tpush[@]}"); t_s=$(median "${sk_tpush[@]}")
echo
echo "| 500 MB image ($((total / 1000000)) MB gzip), 5 layers, local registry (median of $runs, s) | isula-build (Rust) | skopeo copy | ratio |"
echo "| --- | --- | --- | --- |"
printf '| pull (ours: blob digests and diff_ids verified, into the store; skopeo: into an oci: dir) | %.2f | %.2f | %.2f |\n' "$p_o" "$p_s" "$(awk -v a="$p_o" -v b="$p_s" 'BEGIN {print a / b}')"
printf '| SHA-256 of the blobs and the tars (OpenSSL, all cores): the hashing floor of a verifying pull | %.2f | | %.2f |\n' "$p_f" "$(awk -v a="$p_f" -v b="$p_s" 'BEGIN {print a / b}')"
printf '| push (to a registry started empty) | %.2f | %.2f | %.2f |\n' "$u_o" "$u_s" "$(awk -v a="$u_o" -v b="$u_s" 'BEGIN {print a / b}')"
printf '| push of tar layers, compressed while pushing (ours: loaded from a docker-archive; skopeo: from that archive) | %.2f | %.2f | %.2f |\n' "$t_o" "$t_s" "$(awk -v a="$t_o" -v b="$t_s" 'BEGIN {print a / b}')"
echo
echo "runs: ours pull ${ours_pull[*]} / skopeo pull ${sk_pull[*]} / hashing floor ${floor[*]} / ours push ${ours_push[*]} / skopeo push ${sk_push[*]} / ours tar push ${ours_tpush[*]} / skopeo tar push ${sk_tpush[*]}"
