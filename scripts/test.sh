#!/usr/bin/env bash
# The whole test suite. Works on a fresh Debian machine as root: installs what the tests need
# (Debian packages, Rust components) when missing, then runs format and lint checks, unit
# tests, integration tests against temporary data roots, and the conformance corpora.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v tar >/dev/null 2>&1 || need_pkgs+=(tar)
command -v git >/dev/null 2>&1 || need_pkgs+=(git)
# Outside judges of save/load (tests skip with a SKIP line when one is missing).
for tool in podman skopeo umoci runc; do
    command -v "$tool" >/dev/null 2>&1 || need_pkgs+=("$tool")
done
# The RUN sandbox: libseccomp headers to build, runc/crun for OCI-runtime delegation tests,
# buildah for the RUN benchmark (bench/run_steps.sh).
pkg-config --exists libseccomp 2>/dev/null || need_pkgs+=(libseccomp-dev pkg-config)
command -v runc >/dev/null 2>&1 || need_pkgs+=(runc)
command -v crun >/dev/null 2>&1 || need_pkgs+=(crun)
command -v buildah >/dev/null 2>&1 || need_pkgs+=(buildah)
# Registry tests: a real registry, skopeo as judge, htpasswd for Basic auth, openssl for
# the generated CA and token signing.
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_pkgs+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# -o docker-daemon: tests start their own dockerd (own data root and socket) and judge with
# /usr/bin/docker; -o isulad: tests use a stand-in isula judged by skopeo.
command -v dockerd >/dev/null 2>&1 && [ -x /usr/bin/docker ] || need_pkgs+=(docker.io)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${need_pkgs[*]} (run as root or install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Package scripts must not start services: a default dockerd would add docker0 and
    # iptables rules to the host.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked -- --test-threads="${TEST_THREADS:-2}"
