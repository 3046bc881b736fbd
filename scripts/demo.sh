#!/usr/bin/env bash
# The main job, end to end on a fresh Debian machine as root: build the binary, make a real
# busybox rootfs, import it as an image, build the example image in examples/hello from it
# (COPY, RUN, metadata), and list the images.
# DATAROOT/RUNROOT override the store location (default: the system store).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || need+=(busybox-static)
pkg-config --exists libseccomp 2>/dev/null || need+=(libseccomp-dev pkg-config)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked
bin=target/release/isula-build
opts=()
[ -n "${DATAROOT:-}" ] && opts+=(--dataroot "$DATAROOT")
[ -n "${RUNROOT:-}" ] && opts+=(--runroot "$RUNROOT")
tarball=$(mktemp --suffix=.tar)
trap 'rm -f "$tarball"' EXIT
scripts/make-busybox-rootfs.sh "$tarball"
"$bin" "${opts[@]}" ctr-img import "$tarball" busybox:latest
"$bin" "${opts[@]}" ctr-img build -t hello:latest examples/hello
"$bin" "${opts[@]}" ctr-img images
