#!/usr/bin/env bash
# Check that proto/control.proto is wire-identical to upstream isula-build's
# api/services/control.proto: both are compiled with protoc (without source info, so
# comments do not count) and the descriptor sets compared. Any difference in a package,
# service, method, streaming shape, message, field name, number, type or label fails.
#
#   scripts/check-proto-compat.sh /path/to/isula-build/api/services/control.proto
#
# Needs protoc and the well-known types (Debian: protobuf-compiler). Not part of
# scripts/test.sh: upstream's file is not in this repository.
set -euo pipefail
cd "$(dirname "$0")/.."
upstream=${1:?usage: $0 UPSTREAM_CONTROL_PROTO}
command -v protoc >/dev/null || { echo "protoc not installed (apt-get install protobuf-compiler)" >&2; exit 1; }
inc=/usr/include
[ -f "$inc/google/protobuf/empty.proto" ] || { echo "well-known types not found under $inc" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/up" "$tmp/ours"
cp "$upstream" "$tmp/up/control.proto"
cp proto/control.proto "$tmp/ours/control.proto"
for d in up ours; do
    protoc -I"$tmp/$d" -I"$inc" --descriptor_set_out="$tmp/$d.pb" "$tmp/$d/control.proto"
    protoc -I"$inc" --decode=google.protobuf.FileDescriptorSet google/protobuf/descriptor.proto \
        <"$tmp/$d.pb" >"$tmp/$d.txt"
done
if diff -u "$tmp/up.txt" "$tmp/ours.txt"; then
    echo "proto/control.proto is wire-identical to $upstream"
else
    echo "proto/control.proto differs from $upstream (see above)" >&2
    exit 1
fi
