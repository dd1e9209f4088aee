#!/bin/sh
# Vivarium guest additions: remove what install.sh installed.
#
#   sh uninstall.sh              as root, in the running guest
#   sh uninstall.sh --root DIR   from a guest file system mounted at DIR
#
# The shares the agent mounted stay mounted until the next boot
# (umount -a -t 9p unmounts them now).
set -eu

NAME=vivarium-additions
BIN=/usr/local/sbin/$NAME
ROOT=

while [ $# -gt 0 ]; do
	case "$1" in
	--root) [ $# -ge 2 ] || { echo "uninstall.sh: --root needs a directory" >&2; exit 2; }
		ROOT=$(cd "$2" && pwd); shift 2 ;;
	-h|--help) sed -n '2,9p' "$0"; exit 0 ;;
	*) echo "uninstall.sh: unknown option '$1'" >&2; exit 2 ;;
	esac
done
[ "$ROOT" = / ] && ROOT=
if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
	echo "uninstall.sh: run it as root (sudo sh $0)" >&2
	exit 1
fi

if [ -f "$ROOT/etc/systemd/system/$NAME.service" ]; then
	if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
		systemctl disable --now "$NAME.service" || true
	fi
	rm -f "$ROOT/etc/systemd/system/$NAME.service" \
	      "$ROOT/etc/systemd/system/multi-user.target.wants/$NAME.service"
	[ -z "$ROOT" ] && [ -d /run/systemd/system ] && systemctl daemon-reload || true
fi
if [ -f "$ROOT/etc/init.d/$NAME" ]; then
	if [ -z "$ROOT" ]; then
		"/etc/init.d/$NAME" stop 2>/dev/null || rc-service "$NAME" stop 2>/dev/null || true
		command -v rc-update >/dev/null 2>&1 && rc-update del "$NAME" default 2>/dev/null || true
		command -v update-rc.d >/dev/null 2>&1 && update-rc.d -f "$NAME" remove || true
		command -v chkconfig >/dev/null 2>&1 && chkconfig --del "$NAME" 2>/dev/null || true
	fi
	rm -f "$ROOT/etc/init.d/$NAME" "$ROOT/etc/runlevels/default/$NAME" \
	      "$ROOT"/etc/rc[0-6].d/S90$NAME
fi
if [ -f "$ROOT/etc/inittab" ] && grep -q "$BIN" "$ROOT/etc/inittab"; then
	sed -i "\|$BIN|d" "$ROOT/etc/inittab"
	[ -z "$ROOT" ] && kill -HUP 1 2>/dev/null || true
fi
if [ -f "$ROOT/etc/rc.local" ] && grep -q "$BIN" "$ROOT/etc/rc.local"; then
	sed -i "\|$BIN|d" "$ROOT/etc/rc.local"
fi
if [ -z "$ROOT" ] && command -v pkill >/dev/null 2>&1; then
	pkill -x "$NAME" 2>/dev/null || true
fi
rm -f "$ROOT$BIN" "$ROOT/usr/local/sbin/$NAME-uninstall"
rm -rf "$ROOT/usr/local/share/doc/$NAME"
echo "Vivarium guest additions removed"
