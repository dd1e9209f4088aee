#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_manager.sh MANAGER VIVARIUM ARTEFACTS - the GTK manager for real: a
# private Xvfb, a private D-Bus session with the AT-SPI bus, a private VM
# library with VM 'cli1' made by the CLI; test_manager.py drives the window
# through its accessibility tree, then test_manager_vm.py takes a VM made
# in the window from a GRUB ISO through its life.  Screenshots go to
# ARTEFACTS.
# Exit: 0 pass, 1 fail, 77 skip (no Xvfb, dbus-run-session or pyatspi).
set -u
here=$(cd "$(dirname "$0")" && pwd)
manager=${1:?usage: test_manager.sh MANAGER VIVARIUM ARTEFACTS}
viv=${2:?}
art=${3:?}

skip() { echo "SKIP: $*"; exit 77; }
command -v Xvfb >/dev/null || skip "Xvfb is not installed"
command -v dbus-run-session >/dev/null || skip "dbus-run-session is not installed (dbus)"
command -v import >/dev/null || skip "ImageMagick's import is not installed"
command -v xdotool >/dev/null || skip "xdotool is not installed"
# Debian's python3-pyatspi is in the system Python's path: prefer
# /usr/bin/python3 over another python3 earlier in $PATH (pyenv...).
py=
for p in /usr/bin/python3 python3; do
	"$p" -c 'import pyatspi' 2>/dev/null && { py=$p; break; }
done
[ -n "$py" ] || skip "python3-pyatspi is not installed"
[ -x /usr/libexec/at-spi-bus-launcher ] || skip "at-spi2-core is not installed"
# Both scripts import guitest.py beside them: no __pycache__ in the sources.
export PYTHONDONTWRITEBYTECODE=1

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-gui.XXXXXX")
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" "$art" && chmod 700 "$XDG_RUNTIME_DIR"
rm -f "$art"/*.png
xpid=
cleanup() {
	local pidf
	for pidf in "$XDG_DATA_HOME"/vivarium/vms/*/vm.pid; do
		[ -f "$pidf" ] && kill -9 "$(cat "$pidf")" 2>/dev/null
	done
	[ -n "$xpid" ] && kill "$xpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# `vivarium manager` finds the manager beside it (the build tree's gui/).
out=$("$viv" manager --version 2>&1)
[ "$out" = "vivarium-manager 0.1.0" ] || { echo "FAIL: vivarium manager --version said '$out'"; exit 1; }
echo "ok   vivarium manager runs vivarium-manager ($out)"

"$here/../e2e/mktinyguest.sh" "$work/tiny.bzImage" || { echo "FAIL: cannot build the tiny guest"; exit 1; }
export TINY_KERNEL=$work/tiny.bzImage
"$viv" create cli1 --kernel "$TINY_KERNEL" --memory 32M --nic none --notes "made by the CLI" ||
	{ echo "FAIL: vivarium create"; exit 1; }

# Xvfb on a display of its own: not -displayfd's first free one, since
# X servers of other sandboxes here may share the abstract socket namespace
# without sharing /tmp's lock files (as tests/unit/test_display_sdl.c):
# start high, at a number from our pid, and move on when Xvfb exits.
n=$((300 + $$ % 400))
for _ in $(seq 20); do
	n=$((n + 1))
	[ -e "/tmp/.X$n-lock" ] && continue
	Xvfb ":$n" -screen 0 1024x700x24 -nolisten tcp -noreset >"$work/xvfb.log" 2>&1 &
	xpid=$!
	for _ in $(seq 30); do
		kill -0 "$xpid" 2>/dev/null || break
		DISPLAY=:$n xdotool getdisplaygeometry >/dev/null 2>&1 && break
		sleep 0.1
	done
	kill -0 "$xpid" 2>/dev/null && DISPLAY=:$n xdotool getdisplaygeometry >/dev/null 2>&1 && break
	kill "$xpid" 2>/dev/null
	xpid=
done
[ -n "$xpid" ] || { echo "FAIL: no Xvfb would start"; cat "$work/xvfb.log"; exit 1; }
export DISPLAY=:$n
unset NO_AT_BRIDGE WAYLAND_DISPLAY
export GTK_A11Y=atspi
# The a11y bus launcher is started by D-Bus activation (org.a11y.Bus).
dbus-run-session -- "$py" "$here/test_manager.py" "$manager" "$viv" "$art"
rc=$?

# A VM's whole life through the window (New, Settings, Snapshots, Delete)
# from a GRUB ISO (tests/images/mk-grub-iso.sh; about 20 s to the menu on
# this host's /dev/kvm).  Without grub-mkrescue only the New VM dialog's
# refusals run.
if "$here/../images/mk-grub-iso.sh" "$work/grub.iso" >"$work/iso.log" 2>&1; then
	export GRUB_ISO=$work/grub.iso
else
	echo "note: no GRUB ISO ($(tail -n 1 "$work/iso.log")): the VM's life is skipped"
fi
dbus-run-session -- "$py" "$here/test_manager_vm.py" "$manager" "$viv" "$art" || rc=1

# Measured, not checked: the start-up to a drawn window with 20 VMs in the
# library, and the resident memory then (--startup-report).
for i in $(seq -w 2 20); do
	"$viv" create "vm$i" --kernel "$TINY_KERNEL" --memory 32M --nic none >/dev/null ||
		echo "note: vivarium create vm$i failed"
done
for _ in 1 2 3; do
	NO_AT_BRIDGE=1 timeout 30 "$manager" --startup-report 2>/dev/null | sed 's/^/measured: /'
done
exit $rc
