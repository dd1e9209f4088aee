#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_input_in_rig.sh VIVARIUM VNC_CLIENT - the seamless mouse with a real
# Linux guest: the Debian kernel's own virtio_input driver takes the
# virtio tablet and keyboard, and what a VNC viewer does arrives in the
# guest's /dev/input/event* as evdev events, positions scaled to the
# tablet's 0..32767 as the console maps the framebuffer's pixels.
#
# The guest: the Debian kernel booted directly with the test initramfs
# built --input (tests/rig/mkguest-initramfs.sh: loads virtio_pci and
# virtio_input, prints GUEST-INPUT-DEV lines with each device's evdev
# capabilities, then every event of either device as a GUEST-EV line).  In
# the nested rig: create the VM, start it headless with VNC on a Unix
# socket, wait for GUEST-INPUT-READY; `vivarium status` must then say
# pointer "absolute: virtio-tablet", keyboard "virtio-keyboard"; the VNC
# client (tests/e2e/vnc_client.c) moves the pointer to framebuffer pixel
# (100, 50), clicks there, scrolls down at (W-1, H-1) and types 'a'.
# Checks: the tablet is EV_SYN|KEY|REL|ABS with ABS_X/ABS_Y, BTN_LEFT..
# BTN_EXTRA and REL_WHEEL and no input properties (a pointer, not a touch
# screen); the keyboard has EV_REP and EV_LED; the events, exactly:
#   ABS_X (2x+1)*32768/(2W), ABS_Y likewise, SYN; BTN_LEFT 1, SYN;
#   BTN_LEFT 0, SYN; the new position, REL_WHEEL -1, SYN; KEY_A 1, SYN,
#   KEY_A 0, SYN (the keyboard's) - and each position scaled back by the
#   screen size lands on the pixel the viewer pointed at.
#
# Exit: 0 pass, 1 fail, 77 skip (no qemu-system-x86_64 or guest kernel).

set -u
here=$(cd "$(dirname "$0")" && pwd)
rig=$here/../rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
viv=${1:-}
vnccli=${2:-}
timeout_s=${VIVARIUM_E2E_TIMEOUT:-480}

fail() { echo "FAIL: $*"; exit 1; }

rig_test_setup "$viv"
[ -n "$vnccli" ] && [ -x "$vnccli" ] || fail "VNC client '$vnccli' does not exist"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-input.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/../rig/mkguest-initramfs.sh" --input "$work/guest.cpio.gz" || fail "cannot build the guest initramfs"

cat >"$work/test.sh" <<'EOF'
k=$1 i=$2
export XDG_DATA_HOME=${WORK:-/tmp}/data XDG_RUNTIME_DIR=${WORK:-/tmp}/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
viv=${VIV:-vivarium} vnc=${VNC:-vnc_client}
log=$XDG_DATA_HOME/vivarium/vms/in/serial.log
sock=$XDG_RUNTIME_DIR/vnc.sock
$viv create in --kernel "$k" --initrd "$i" --memory 512M --append "console=ttyS0 quiet panic=-1" || exit 10
$viv start in --display none --vnc "unix:$sock" || exit 11
n=0
until grep -q GUEST-INPUT-READY "$log" 2>/dev/null; do
	n=$((n + 1))
	if [ $n -gt 300 ] || ! $viv status in | grep -q running; then
		echo "guest never reached GUEST-INPUT-READY:"; cat "$log"; $viv stop in --force; exit 12
	fi
	sleep 1
done
echo "STATUS $($viv status in --json | tr -d '\n ')"
size=$($vnc "unix:$sock" --print-size) || { $viv stop in --force; exit 13; }
echo "SIZE $size"
w=${size%x*} h=${size#*x}
$vnc "unix:$sock" --pointer 100,50 --pointer 100,50,1 --pointer 100,50,0 \
	--pointer $((w - 1)),$((h - 1)),16 --pointer $((w - 1)),$((h - 1)),0 --key a ||
	{ $viv stop in --force; exit 14; }
n=0
until [ "$(grep -c 'GUEST-EV dev=keyboard' "$log")" -ge 4 ] || [ $n -gt 30 ]; do
	sleep 1; n=$((n + 1))
done
echo "--- serial.log"; tr -d '\r' <"$log"
$viv stop in --force
exit 0
EOF

if runs_directly vivarium "$viv" "$work"; then
	echo "# host has hardware virtualization: running vivarium directly"
	WORK=$work VIV=$viv VNC=$vnccli timeout -k 10 "$timeout_s" sh "$work/test.sh" \
		"$kernel" "$work/guest.cpio.gz" </dev/null 2>&1 | tee "$work/out"
else
	echo "# running vivarium in the nested rig"
	"$rig" --retries 3 --timeout "$timeout_s" --bin "$viv:/bin/vivarium" \
		--bin "$vnccli:/bin/vnc_client" \
		--file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz" \
		--file "$work/test.sh:/rig/test.sh" \
		-- "sh /rig/test.sh /guest/vmlinuz /guest/initrd.cpio.gz" \
		</dev/null 2>&1 | tee "$work/out"
fi

rig_output "$work/out" >"$work/out.txt"
errors=0
check() {
	if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); fi
}
status=$(grep -a '^STATUS ' "$work/out.txt" | tail -n1)
size=$(grep -a '^SIZE ' "$work/out.txt" | tail -n1 | cut -d' ' -f2)
w=${size%x*} h=${size#*x}
tab=$(grep -a 'GUEST-INPUT-DEV=Vivarium Virtio Tablet' "$work/out.txt" | tail -n1)
kbd=$(grep -a 'GUEST-INPUT-DEV=Vivarium Virtio Keyboard' "$work/out.txt" | tail -n1)
events=$(grep -ao 'GUEST-EV dev=[a-z]* type=[0-9]* code=[0-9]* value=[0-9]*' "$work/out.txt" |
	sed 's/GUEST-EV dev=//; s/ type=/ /; s/ code=/ /; s/ value=/ /')
echo "# screen ${size:-?}; tablet: ${tab#*=}"
echo "# keyboard: ${kbd#*=}"
printf '# events (device type code value):\n%s\n' "$events" | sed '2,$s/^/#   /'
check '[ -n "$size" ] && [ "$w" -gt 100 ] && [ "$h" -gt 50 ]' "the VNC framebuffer's size (${size:-none})"
check 'grep -q "\"pointer\":\"absolute:virtio-tablet\"" <<<"$status" && grep -q "\"keyboard\":\"virtio-keyboard\"" <<<"$status"' \
	"status: pointer absolute: virtio-tablet, keyboard virtio-keyboard once the driver runs ($status)"
# sysfs bitmaps: ev f = SYN KEY REL ABS; key 1f0000 in the word of BTN_MISC
# (0x100-0x13f: BTN_LEFT..BTN_EXTRA); rel 100 = REL_WHEEL; abs 3 = X, Y.
check 'grep -q " ev=f key=1f0000 0 0 0 0 rel=100 abs=3 prop=0$" <<<"$tab"' \
	"the tablet: EV_KEY BTN_LEFT..BTN_EXTRA, EV_REL REL_WHEEL, EV_ABS X/Y, no INPUT_PROP_DIRECT"
check 'grep -q " ev=120003 " <<<"$kbd"' "the keyboard: EV_SYN, KEY, LED, REP (${kbd#* ev=})"
ax() { echo $(((2 * $1 + 1) * 32768 / (2 * $2))); }
if [ -n "$size" ]; then
	want="tablet 3 0 $(ax 100 "$w")
tablet 3 1 $(ax 50 "$h")
tablet 0 0 0
tablet 1 272 1
tablet 0 0 0
tablet 1 272 0
tablet 0 0 0
tablet 3 0 $(ax $((w - 1)) "$w")
tablet 3 1 $(ax $((h - 1)) "$h")
tablet 2 8 4294967295
tablet 0 0 0
keyboard 1 30 1
keyboard 0 0 0
keyboard 1 30 0
keyboard 0 0 0"
	got=$(printf '%s\n' "$events" | sort -s -k1,1r)
	check '[ "$got" = "$want" ]' "the guest's evdev events are exactly the viewer's, scaled"
	x=$(ax 100 "$w") y=$(ax 50 "$h")
	check '[ $((x * w / 32768)) = 100 ] && [ $((y * h / 32768)) = 50 ]' \
		"ABS_X $x, ABS_Y $y scale back to pixel (100, 50) of ${w}x${h}"
fi
[ "$errors" -eq 0 ] || { tail -n 60 "$work/out.txt"; fail "$errors checks failed"; }
echo "PASS"
