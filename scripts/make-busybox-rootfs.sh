#!/usr/bin/env bash
# Make a small real rootfs tarball from Debian's busybox-static: /bin/busybox plus one
# symlink per applet, /etc/passwd and /etc/group with root and nobody, /tmp mode 1777.
# Usage: scripts/make-busybox-rootfs.sh OUT.tar
set -euo pipefail
out=${1:?usage: make-busybox-rootfs.sh OUT.tar}
bb=$(command -v busybox || true)
[ -x /bin/busybox ] && bb=/bin/busybox
if [ -z "$bb" ] || ! "$bb" --list >/dev/null 2>&1; then
    echo "busybox-static is not installed (apt-get install -y busybox-static)" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev,var,usr/bin,home}
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
    [ "$applet" = busybox ] && continue
    ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
# Fixed mtimes and sorted names: the tarball is the same on every run.
find "$root" -exec touch -h -d @1600000000 {} +
tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@1600000000 \
    -C "$root" -cf "$out" .
