#!/bin/sh
# Grant an admin-chosen group the use of an installed isula-build without a daemon:
# owner root, group GROUP, mode 4750 (setuid root, executable only by root and GROUP).
# See docs/SETUID.md for what members of the group can and cannot do.
#
# usage: enable-setuid.sh [--undo] [BINARY]   (BINARY defaults to /usr/bin/isula-build;
#        --undo puts it back to root:root 0550, as packaging/install.sh installs it)
# The group is read from /etc/isula-build/configuration.toml (`group`, default "isula")
# and created when missing.
set -eu

undo=0
if [ "${1:-}" = "--undo" ]; then
    undo=1
    shift
fi
bin=${1:-/usr/bin/isula-build}
conf=/etc/isula-build/configuration.toml

if [ "$(id -u)" -ne 0 ]; then
    echo "enable-setuid.sh: must be run as root" >&2
    exit 1
fi
if [ ! -f "$bin" ]; then
    echo "enable-setuid.sh: $bin: no such file" >&2
    exit 1
fi
if [ "$undo" -eq 1 ]; then
    chown root:root "$bin"
    chmod 0550 "$bin"
    echo "$bin: setuid mode removed (root:root 0550, as packaging/install.sh installs it)"
    exit 0
fi

group=isula
if [ -f "$conf" ]; then
    g=$(sed -n 's/^[[:space:]]*group[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$conf" | head -n 1)
    [ -n "$g" ] && group=$g
fi
if ! getent group "$group" >/dev/null; then
    groupadd --system "$group"
    echo "created group $group"
fi
chown "root:$group" "$bin"
chmod 4750 "$bin"
echo "$bin: root:$group 4750; members of $group may build (see docs/SETUID.md)"
