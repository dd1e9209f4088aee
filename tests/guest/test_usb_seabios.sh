#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_usb_seabios.sh VIVARIUM - firmware test of the xHCI: SeaBIOS's own
# xHCI driver (Debian's seabios, independent of ours) finds the controller
# of `vivarium run --usb on`, reads its Supported Protocol capabilities,
# resets the ports, addresses and configures the HID devices through the
# command and transfer rings, and sets up the USB keyboard (boot
# protocol).  Watched on SeaBIOS's debug port (--debugcon): passes when,
# before the timeout, it has printed the controller ("XHCI init: ... 8
# ports, 32 slots"), both protocols, an enabled full-speed port 1 and
# "USB keyboard initialized"; the VMM must still be running then, and
# the test stops it.
#
# Environment: VIVARIUM_FW_TIMEOUT seconds to wait (default 120).
# Exit: 0 pass, 1 fail, 77 skip (no /dev/kvm).

set -u

viv=${1:-}
timeout_s=${VIVARIUM_FW_TIMEOUT:-120}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -f "${dbg:-}" ] && tail -n 30 "$dbg"; exit 1; }

[ -n "$viv" ] && [ -x "$viv" ] || fail "vivarium binary '$viv' does not exist (build it first)"
[ -c /dev/kvm ] || skip "no /dev/kvm on this host"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not read-writable by $(id -un)"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-usb.XXXXXX")
dbg=$work/debugcon.log
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

"$viv" run --firmware bios --memory 128M --usb on --display none \
	--serial "file:$work/serial.log" --debugcon "$dbg" \
	</dev/null >"$work/vmm.out" 2>&1 &
pid=$!

want=("XHCI init: regs @ .*, 8 ports, 32 slots, 32 byte contexts"
      "XHCI +protocol USB +2.00, 4 ports \(offset 1\)"
      "XHCI +protocol USB +3.00, 4 ports \(offset 5\)"
      "XHCI port #1: 0x[0-9a-f]+, powered, enabled, pls 0, speed 1 \[Full\]"
      "USB keyboard initialized")
start=$SECONDS
while :; do
	kill -0 "$pid" 2>/dev/null || { cat "$work/vmm.out"; fail "the VMM exited"; }
	missing=
	for w in "${want[@]}"; do
		grep -Eaq "$w" "$dbg" 2>/dev/null || { missing=$w; break; }
	done
	[ -z "$missing" ] && break
	[ $((SECONDS - start)) -ge "$timeout_s" ] &&
		fail "after ${timeout_s}s SeaBIOS has not printed /$missing/"
	sleep 0.5
done
echo "# SeaBIOS set up the USB keyboard after $((SECONDS - start)) s"
echo PASS
