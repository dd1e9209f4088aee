#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_console_in_rig.sh VIVARIUM - Linux's bochs-drm drives our VGA: its
# console appears in the framebuffer at the mode it chose.
#
# The guest: the Debian kernel booted by SeaBIOS (firmware=bios, so the VGA
# BIOS runs and PCI BARs are assigned as on a PC) with the test initramfs
# built --drm (tests/rig/mkguest-initramfs.sh: loads bochs.ko, prints
# GUEST-FB-DRIVER/-MODE/-BPP, writes eight long lines to tty0 and waits).
# In the nested rig: create the VM in the library, start it headless,
# wait for GUEST-FB-TEXT in its serial.log, take `vivarium screenshot`,
# and bring the PNG out (base64 on the console).  Checks: fb0 is
# bochs-drm's, the screenshot has the mode's size, and its top rows hold
# text (light pixels where fbcon drew the lines) while the rest is dark.
#
# Exit: 0 pass, 1 fail, 77 skip (no qemu-system-x86_64, kernel or ImageMagick).

set -u
here=$(cd "$(dirname "$0")" && pwd)
rig=$here/../rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
viv=${1:-}
timeout_s=${VIVARIUM_E2E_TIMEOUT:-480}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

rig_test_setup "$viv"
[ -x /usr/bin/convert ] && [ -x /usr/bin/identify ] || skip "ImageMagick is not installed (apt-get install imagemagick)"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-console.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/../rig/mkguest-initramfs.sh" --drm "$work/guest.cpio.gz" || fail "cannot build the guest initramfs"

cat >"$work/test.sh" <<'EOF'
k=$1 i=$2
export XDG_DATA_HOME=${WORK:-/tmp}/data XDG_RUNTIME_DIR=${WORK:-/tmp}/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
viv=${VIV:-vivarium}
log=$XDG_DATA_HOME/vivarium/vms/fb/serial.log
$viv create fb --kernel "$k" --initrd "$i" --memory 512M --append "console=ttyS0 quiet panic=-1" || exit 10
$viv edit fb firmware=bios || exit 10
$viv start fb --display none || exit 11
n=0
until grep -q GUEST-WAITING "$log" 2>/dev/null; do
	n=$((n + 1))
	if [ $n -gt 300 ] || ! $viv status fb | grep -q running; then
		echo "guest never reached GUEST-WAITING:"; cat "$log"; $viv stop fb --force; exit 12
	fi
	sleep 1
done
sleep 2
$viv screenshot fb /tmp/fb.png || { $viv stop fb --force; exit 13; }
echo "--- serial.log"; tr -d '\r' <"$log"
echo "SHOT-BEGIN"; base64 /tmp/fb.png; echo "SHOT-END"
$viv stop fb --force
exit 0
EOF

if runs_directly vivarium "$viv" "$work"; then
	echo "# host has hardware virtualization: running vivarium directly"
	WORK=$work VIV=$viv timeout -k 10 "$timeout_s" sh "$work/test.sh" "$kernel" "$work/guest.cpio.gz" \
		</dev/null 2>&1 | tee "$work/out"
else
	echo "# running vivarium in the nested rig"
	"$rig" --retries 3 --timeout "$timeout_s" --bin "$viv:/bin/vivarium" \
		--file /usr/share/seabios/bios-256k.bin --file /usr/share/seabios/vgabios-stdvga.bin \
		--file /usr/share/qemu/linuxboot_dma.bin \
		--file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz" \
		--file "$work/test.sh:/rig/test.sh" \
		-- "sh /rig/test.sh /guest/vmlinuz /guest/initrd.cpio.gz" \
		</dev/null 2>&1 | tee "$work/out"
fi

rig_output "$work/out" >"$work/out.txt"
sed -n '/^SHOT-BEGIN$/,/^SHOT-END$/p' "$work/out.txt" | sed '1d;$d' | base64 -d >"$work/fb.png" 2>/dev/null
driver=$(grep -ao 'GUEST-FB-DRIVER=[^ ]*' "$work/out.txt" | tail -n1 | cut -d= -f2)
mode=$(grep -ao 'GUEST-FB-MODE=[0-9]*,[0-9]*' "$work/out.txt" | tail -n1 | cut -d= -f2)
bpp=$(grep -ao 'GUEST-FB-BPP=[0-9]*' "$work/out.txt" | tail -n1 | cut -d= -f2)
size=$(/usr/bin/identify -format '%w,%h' "$work/fb.png" 2>/dev/null)
errors=0
check() {
	if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); fi
}
check 'case $driver in bochs*) true ;; *) false ;; esac' "fb0 belongs to bochs-drm ('${driver:-none}')"
check '[ -n "$mode" ]' "the guest set a mode: ${mode:-none} at ${bpp:-?} bpp"
check '[ -s "$work/fb.png" ] && [ "$size" = "$mode" ]' "the screenshot has the guest's mode (${size:-no PNG} vs ${mode:-none})"
if [ -s "$work/fb.png" ] && [ -n "$size" ]; then
	w=${size%,*} h=${size#*,}
	# fbcon's 8x16 font: eight lines of text fill the top 128 rows.
	top=$(/usr/bin/convert "$work/fb.png" -crop "${w}x128+0+0" -colorspace gray -format '%[fx:mean]' info:)
	rest=$(/usr/bin/convert "$work/fb.png" -crop "${w}x$((h - 200))+0+200" -colorspace gray -format '%[fx:mean]' info:)
	echo "# mean brightness: top 128 rows $top, below row 200 $rest"
	check 'awk -v t="$top" "BEGIN { exit !(t > 0.05) }"' "text in the top rows (mean $top)"
	check 'awk -v r="$rest" "BEGIN { exit !(r < 0.01) }"' "the rest of the screen is dark (mean $rest)"
	cp "$work/fb.png" "${VIVARIUM_TEST_ARTIFACTS:-/tmp}/console-in-rig.png" 2>/dev/null &&
		echo "# screenshot kept: ${VIVARIUM_TEST_ARTIFACTS:-/tmp}/console-in-rig.png"
fi
[ "$errors" -eq 0 ] || { tail -n 60 "$work/out.txt"; fail "$errors checks failed"; }
echo "PASS"
