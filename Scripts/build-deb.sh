#!/usr/bin/env bash
# Builds a Debian package of tcp-fallback with dpkg-deb: the binary (Swift runtime linked in
# statically), the manual page, the systemd units (in /lib/systemd/system), the logrotate
# snippet and the example instance files (in /etc/default, as *.example).
#
#   Scripts/build-deb.sh [--binary PATH] [--output DIR] [--fast]
#
# --fast compresses with gzip -1 instead of xz (the tests package a 40 MB debug binary).
# Without --binary it builds the release binary first (Scripts/build-release.sh). Prints the
# path of the package. `make deb` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=
output=.build/deb
compression=(-Zxz)
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --output) output=$2; shift 2 ;;
    --fast) compression=(-Zgzip -z1); shift ;;
    *) echo "usage: $0 [--binary PATH] [--output DIR] [--fast]" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  Scripts/build-release.sh
  binary=.build/release/tcp-fallback
fi
command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb is missing (Debian's dpkg)" >&2; exit 1; }
version=$("$binary" --version)
arch=$(dpkg --print-architecture)
root=$(mktemp -d "${TMPDIR:-/tmp}/tcp-fallback-deb.XXXXXX")
trap 'rm -rf "$root"' EXIT

make --no-print-directory install-files DESTDIR="$root" PREFIX=/usr UNITDIR=/lib/systemd/system BINARY="$binary" >/dev/null
strip --strip-debug "$root/usr/bin/tcp-fallback" 2>/dev/null || true
gzip -9n "$root/usr/share/man/man1/tcp-fallback.1"
install -d "$root/usr/share/doc/tcp-fallback"
install -m 0644 README.md "$root/usr/share/doc/tcp-fallback/README.md"

install -d "$root/DEBIAN"
# The files under /etc are the administrator's once installed: upgrades do not overwrite them.
(cd "$root" && find etc -type f | sed 's#^#/#' | sort) >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: tcp-fallback
Version: $version
Architecture: $arch
Maintainer: tcp-fallback developers <tcp-fallback@localhost>
Installed-Size: $size
Depends: libc6, libstdc++6, libgcc-s1, libsystemd0, libyaml-0-2
Section: net
Priority: optional
Description: health-checking failover TCP proxy
 Every client connection goes to the first healthy backend of an ordered list, or with
 MySQL roles to the writable primary or a fresh replica. Backends that fail are marked
 down and checked in the background until they answer again. Drop-in compatible with the
 command line of the Go tcp_fallback; systemd notify, watchdog and socket activation.
CONTROL

mkdir -p "$output"
package="$output/tcp-fallback_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compression[@]}" --build "$root" "$package" >/dev/null
echo "$package"
