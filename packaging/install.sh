#!/bin/sh
# Install isula-build as a system package would: the binary, the isula-builder name for the
# compatibility server, default config files, the systemd unit, shell completions and man
# pages, with the modes of the upstream manual's "File and permission" table.
#
#   packaging/install.sh                         # into /usr and /etc (as root)
#   DESTDIR=/tmp/pkgroot PREFIX=/usr packaging/install.sh
#
# Variables: DESTDIR (staging root, default empty), PREFIX (default /usr), SYSCONFDIR
# (default /etc), UNITDIR (default $PREFIX/lib/systemd/system), LOCALSTATEDIR (default /var),
# BIN (the built binary, default target/release/isula-build).
# Existing config files are never replaced. Without DESTDIR, as root, the "isula" group is
# created when missing (upstream's default socket group).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr}
SYSCONFDIR=${SYSCONFDIR:-/etc}
LOCALSTATEDIR=${LOCALSTATEDIR:-/var}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
BIN=${BIN:-$top/target/release/isula-build}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

[ -f "$BIN" ] || die "binary $BIN not found: run 'cargo build --release' or set BIN"
for d in "$top/man" "$top/completions"; do
    [ -d "$d" ] || die "$d missing: regenerate with 'UPDATE_GENERATED=1 cargo test --test generated_docs'"
done

bindir=$DESTDIR$PREFIX/bin
confdir=$DESTDIR$SYSCONFDIR/isula-build
unitdir=$DESTDIR$UNITDIR
mandir=$DESTDIR$PREFIX/share/man/man1
bashdir=$DESTDIR$PREFIX/share/bash-completion/completions
zshdir=$DESTDIR$PREFIX/share/zsh/site-functions
fishdir=$DESTDIR$PREFIX/share/fish/vendor_completions.d
datadir=$DESTDIR$LOCALSTATEDIR/lib/isula-build

# Binaries: 0550. isula-builder is the same binary under another name.
install -d -m 0755 "$bindir"
install -m 0550 "$BIN" "$bindir/isula-build"
ln -sfn isula-build "$bindir/isula-builder"

# Config dir 0650 and files 0600 (upstream's Makefile and manual); never overwrite.
[ -d "$confdir" ] || install -d -m 0650 "$confdir"
for f in configuration.toml storage.toml registries.toml policy.json; do
    if [ -e "$confdir/$f" ]; then
        printf '%-20s %s\n' "$f" "already exist in $confdir, please replace it manually."
    else
        install -m 0600 "$here/$f" "$confdir/$f"
    fi
done

# systemd unit: 0640.
install -d -m 0755 "$unitdir"
install -m 0640 "$here/isula-build.service" "$unitdir/isula-build.service"

# Persistent data root: 0700. (The run root, /var/run/isula-build, 0700, the socket, 0660,
# and the public key, 0400, are created at run time.)
install -d -m 0700 "$datadir"

# Man pages and completions: 0644.
install -d -m 0755 "$mandir" "$bashdir" "$zshdir" "$fishdir"
for m in "$top"/man/*.1; do
    install -m 0644 "$m" "$mandir/"
done
install -m 0644 "$top/completions/isula-build.bash" "$bashdir/isula-build"
install -m 0644 "$top/completions/_isula-build" "$zshdir/_isula-build"
install -m 0644 "$top/completions/isula-build.fish" "$fishdir/isula-build.fish"

if [ -z "$DESTDIR" ] && [ "$(id -u)" -eq 0 ]; then
    getent group isula >/dev/null 2>&1 || groupadd --system isula
fi
