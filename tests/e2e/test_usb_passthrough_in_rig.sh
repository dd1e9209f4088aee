#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_usb_passthrough_in_rig.sh VIVARIUM - a host USB device passed through
# to a Linux guest, without hardware: in the nested rig, L1 loads dummy_hcd
# and libcomposite and builds a configfs mass-storage gadget (Debian's
# kernel has no legacy g_mass_storage) backed by a file of random bytes, so
# L1's usbfs sees a real high-speed USB disk, bound to L1's usb-storage.
# vivarium in L1 runs the --desk test guest (tests/rig/mkguest-initramfs.sh:
# xhci_pci, usb-storage, sd_mod; console lines as commands) with usb=on:
#   - `vivarium usb attach` by VID:PID: L1's usb-storage lets go of the
#     interface, `usb list` shows the device on root port 3;
#   - the guest's usb-storage sees /dev/sda and reads the whole disk: its
#     md5 is the file's (and the time of that O_DIRECT read, for the note's
#     throughput: through the page cache the guest "read" 16 MiB in 5-7 ms);
#   - a second VM's attach of the same device fails with one line (busy);
#   - `vivarium usb detach`: /dev/sda vanishes in the guest, L1's
#     usb-storage has the interface again;
#   - attached again, then the VM stops: L1's usb-storage has it again;
#   - attached again, then the VM process is killed (kill -9): its USB
#     keeper binds L1's usb-storage again and says so in vm.log.
# Also an unknown VID:PID is refused with one line.  Then, for the note's
# figure and not a check, QEMU's usb-host (qemu-xhci) on the same gadget in
# the same run: the same guest reads the same disk (md5, ms).
#
# Exit: 0 pass, 1 fail, 77 skip (no qemu-system-x86_64 or kernel).

set -u
here=$(cd "$(dirname "$0")" && pwd)
rig=$here/../rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
viv=${1:-}
timeout_s=${VIVARIUM_E2E_TIMEOUT:-900}

fail() { echo "FAIL: $*"; exit 1; }

rig_test_setup "$viv"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-usbpt.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/../rig/mkguest-initramfs.sh" --desk "$work/guest.cpio.gz" || fail "cannot build the guest initramfs"

# Runs in L1.  $1: kernel, $2: initrd.
cat >"$work/test.sh" <<'EOF2'
k=$1 i=$2
export XDG_DATA_HOME=/tmp/data XDG_RUNTIME_DIR=/tmp/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
viv=vivarium
dir=$XDG_DATA_HOME/vivarium/vms/u
log=$dir/serial.log
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
say() { printf '%s\n' "$1" | $viv console u >/dev/null 2>&1; }
after() {
	n=0
	until tail -n +"$(($1 + 1))" "$log" 2>/dev/null | grep -q "$2"; do
		n=$((n + 1))
		[ $n -gt $(($3 * 5)) ] && return 1
		sleep 0.2
	done
}
mark() { wc -l <"$log"; }
# ask CMD EXPECT SECONDS: say CMD, wait for EXPECT, and print the guest's
# GUEST-SH lines of it as USBPT-GUEST: lines (serial.log starts over when
# the VM starts again later in this test).
# (The guest's console reader word-splits and globs its line: no "*" in a
# command, or awk's "(b - a) * 1000" becomes a list of files.)
ask() {
	m=$(mark); say "$1"; after "$m" "$2" "$3"
	tail -n +"$((m + 1))" "$log" | tr -d '\r' | grep -a 'GUEST-SH' | sed 's/^/USBPT-GUEST: /'
}
# L1's driver of the gadget's interface 0 ("usb-storage", or none).
host_driver() {
	for d in /sys/bus/usb/devices/*:1.0; do
		[ "$(cat "${d%:1.0}/idVendor" 2>/dev/null)" = 1d6b ] || continue
		[ "$(cat "${d%:1.0}/idProduct" 2>/dev/null)" = 0104 ] || continue
		if [ -e "$d/driver" ]; then basename "$(readlink "$d/driver")"; else echo none; fi
		return
	done
	echo absent
}

# --- the gadget: 16 MiB of random bytes behind a mass-storage function
dd if=/dev/urandom of=/tmp/disk.img bs=1048576 count=16 2>/dev/null
echo "USBPT-HOST-MD5=$(md5sum </tmp/disk.img | cut -d' ' -f1)"
mount -t configfs none /sys/kernel/config 2>/dev/null
g=/sys/kernel/config/usb_gadget/viv
mkdir -p $g/strings/0x409 $g/configs/c.1/strings/0x409 $g/functions/mass_storage.0 || exit 20
echo 0x1d6b >$g/idVendor; echo 0x0104 >$g/idProduct
echo Vivarium >$g/strings/0x409/manufacturer
echo "Rig Disk" >$g/strings/0x409/product
echo 0123456789 >$g/strings/0x409/serialnumber
echo mass-storage >$g/configs/c.1/strings/0x409/configuration
echo 1 >$g/functions/mass_storage.0/lun.0/ro
echo /tmp/disk.img >$g/functions/mass_storage.0/lun.0/file
ln -s $g/functions/mass_storage.0 $g/configs/c.1/ || exit 20
ls /sys/class/udc | head -n1 >$g/UDC || exit 20
n=0
until [ "$(host_driver)" = usb-storage ] || [ $n -gt 30 ]; do sleep 1; n=$((n + 1)); done
echo "USBPT-HOST-DRIVER-BEFORE=$(host_driver)"
$viv usb host | sed 's/^/USBPT-HOST: /'

$viv create u --kernel "$k" --initrd "$i" --memory 512M --usb on \
	--append "console=ttyS0 quiet panic=-1" || exit 10
$viv create w --kernel "$k" --initrd "$i" --memory 256M --usb on \
	--append "console=ttyS0 quiet panic=-1" || exit 10
$viv start u --display none || exit 11
n=0
until grep -q GUEST-WAITING "$log" 2>/dev/null; do
	n=$((n + 1))
	if [ $n -gt 300 ] || ! $viv status u | grep -q running; then
		echo "guest never reached GUEST-WAITING:"; cat "$log"; cat "$dir/vm.log"; $viv stop u --force; exit 12
	fi
	sleep 1
done

$viv usb attach u dead:beef 2>/tmp/e; echo "USBPT-UNKNOWN-RC=$? $(cat /tmp/e)"
$viv usb attach u 1d6b:0104; echo "USBPT-ATTACH-RC=$?"
sleep 2
echo "USBPT-HOST-DRIVER-ATTACHED=$(host_driver)"
$viv usb list u | sed 's/^/USBPT-LIST: /'
ask 'sh n=0; until [ -b /dev/sda ] || [ $n -gt 60 ]; do sleep 1; n=$((n + 1)); done; ls /sys/bus/usb/drivers/usb-storage; cat /sys/block/sda/size' "GUEST-SH-RC=" 90
ask 'sh a=$(cut -d" " -f1 /proc/uptime); s=$(dd if=/dev/sda bs=1048576 iflag=direct 2>/dev/null | md5sum | cut -d" " -f1); b=$(cut -d" " -f1 /proc/uptime); echo "md5=$s ms=$(awk -v a=$a -v b=$b "BEGIN { printf \"%.0f\", (b - a) / 0.001 }")"' "GUEST-SH-RC=" 300

# A second VM cannot have it while u does.
$viv start w --display none || exit 11
sleep 3
$viv usb attach w 1d6b:0104 2>/tmp/e; echo "USBPT-SECOND-RC=$? $(cat /tmp/e)"
$viv stop w --force

$viv usb detach u 1d6b:0104; echo "USBPT-DETACH-RC=$?"
ask 'sh sleep 3; if [ -b /dev/sda ]; then echo sda-still; else echo sda-gone; fi' "GUEST-SH-RC=" 30
n=0
until [ "$(host_driver)" = usb-storage ] || [ $n -gt 15 ]; do sleep 1; n=$((n + 1)); done
echo "USBPT-HOST-DRIVER-DETACHED=$(host_driver)"

$viv usb attach u 1d6b:0104; echo "USBPT-REATTACH-RC=$?"
sleep 2
echo "USBPT-HOST-DRIVER-REATTACHED=$(host_driver)"
$viv stop u --force; echo "USBPT-STOP-RC=$?"
n=0
until [ "$(host_driver)" = usb-storage ] || [ $n -gt 15 ]; do sleep 1; n=$((n + 1)); done
echo "USBPT-HOST-DRIVER-STOPPED=$(host_driver)"

# A VM process that dies holding it: the kernel releases the claim but
# binds no driver; the VM's USB keeper does.
$viv start u --display none && sleep 5 && $viv usb attach u 1d6b:0104 &&
	sleep 2 && echo "USBPT-HOST-DRIVER-BEFORE-KILL=$(host_driver)" &&
	kill -9 "$(cat "$dir/vm.pid")"
n=0
until [ "$(host_driver)" = usb-storage ] || [ $n -gt 15 ]; do sleep 1; n=$((n + 1)); done
echo "USBPT-HOST-DRIVER-AFTER-KILL=$(host_driver)"
echo "USBPT-KEEPER-SAID=$(grep -a "the VM process ended holding it" "$dir/vm.log" | tail -n1)"

# --- the peer: QEMU's usb-host on the same gadget, the same guest
if command -v qemu-system-x86_64 >/dev/null; then
	q=/tmp/q.log
	rm -f /tmp/qs.in /tmp/qs.out; mkfifo /tmp/qs.in /tmp/qs.out
	cat /tmp/qs.out >"$q" &
	qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split -m 512 \
		-kernel "$k" -initrd "$i" -append "console=ttyS0 quiet panic=-1" \
		-display none -no-reboot -serial pipe:/tmp/qs \
		-device qemu-xhci -device usb-host,vendorid=0x1d6b,productid=0x0104 \
		>/tmp/qemu.err 2>&1 &
	qpid=$!
	qsay() { printf '%s\n' "$1" >/tmp/qs.in; }
	qwait() {	# TEXT SECONDS: until the log holds TEXT N+1 times
		n=0
		until [ "$(grep -c "$1" "$q" 2>/dev/null)" -gt "$3" ]; do
			n=$((n + 1)); [ $n -gt $(($2 * 5)) ] && return 1
			kill -0 "$qpid" 2>/dev/null || return 1; sleep 0.2
		done
	}
	if qwait GUEST-WAITING 300 0; then
		qsay 'sh n=0; until [ -b /dev/sda ] || [ $n -gt 60 ]; do sleep 1; n=$((n + 1)); done; cat /sys/block/sda/size'
		qwait GUEST-SH-RC= 90 0
		qsay 'sh a=$(cut -d" " -f1 /proc/uptime); s=$(dd if=/dev/sda bs=1048576 iflag=direct 2>/dev/null | md5sum | cut -d" " -f1); b=$(cut -d" " -f1 /proc/uptime); echo "md5=$s ms=$(awk -v a=$a -v b=$b "BEGIN { printf \"%.0f\", (b - a) / 0.001 }")"'
		qwait GUEST-SH-RC= 300 1
	fi
	kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null
	tr -d '\r' <"$q" | grep -a "GUEST-SH: md5=" | sed 's/^/QEMU-/'
	echo "--- qemu"; cat /tmp/qemu.err; tr -d '\r' <"$q" | tail -n 20
fi
echo "--- serial.log"; tr -d '\r' <"$log"
echo "--- vm.log"; cat "$dir/vm.log"
exit 0
EOF2

echo "# running vivarium in the nested rig"
qmod=/usr/lib/x86_64-linux-gnu/qemu/hw-usb-host.so	# Debian's usb-host (a data file for rig.sh: its libusb comes with vivarium)
extra=()
[ -f "$qmod" ] && extra=(--qemu --file "$qmod:$qmod")
"$rig" --retries 3 --timeout "$timeout_s" --bin "$viv:/bin/vivarium" "${extra[@]}" \
	--module dummy_hcd --module libcomposite --module usb_f_mass_storage \
	--module usb_storage \
	--file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz" \
	--file "$work/test.sh:/rig/test.sh" \
	-- "sh /rig/test.sh /guest/vmlinuz /guest/initrd.cpio.gz" \
	</dev/null 2>&1 | tee "$work/out"

o=$work/out.txt
rig_output "$work/out" >"$o"
val() { grep -ao "^$1=.*" "$o" | tail -n1 | cut -d= -f2-; }
has() { grep -aq "$1" "$o"; }
errors=0
check() {
	if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); fi
}
check '[ "$(val USBPT-HOST-DRIVER-BEFORE)" = usb-storage ]' "L1's usb-storage drives the gadget before ($(val USBPT-HOST-DRIVER-BEFORE))"
check 'grep -aq "^USBPT-HOST: .*1d6b:0104 .*Rig Disk" "$o"' "vivarium usb host lists the gadget with its name"
check 'grep -aq "^USBPT-UNKNOWN-RC=1 vivarium: no USB device dead:beef" "$o"' "an unknown VID:PID: one line ($(val USBPT-UNKNOWN-RC))"
check '[ "$(val USBPT-ATTACH-RC)" = 0 ]' "usb attach u 1d6b:0104"
check '[ "$(val USBPT-HOST-DRIVER-ATTACHED)" != usb-storage ]' "L1's usb-storage let go of it ($(val USBPT-HOST-DRIVER-ATTACHED))"
check 'grep -aq "^USBPT-LIST: port 3 .*1d6b:0104" "$o"' "usb list: on root port 3 (a high-speed device on a USB 2 port)"
gmd5=$(grep -a '^USBPT-GUEST: ' "$o" | grep -ao 'GUEST-SH: md5=[0-9a-f]\{32\}' | head -n1 | cut -d= -f2)
gms=$(grep -a '^USBPT-GUEST: ' "$o" | grep -ao 'GUEST-SH: md5=[0-9a-f]* ms=[0-9]*' | head -n1 | sed 's/.*ms=//')
check '[ -n "$gmd5" ] && [ "$gmd5" = "$(val USBPT-HOST-MD5)" ]' "the guest reads the whole 16 MiB disk byte-exact (md5 ${gmd5:-none})"
[ -n "$gms" ] && [ "$gms" -gt 0 ] 2>/dev/null && echo "# guest read 16 MiB in $gms ms: $((16 * 1024 * 1000 / gms)) KiB/s (nested rig, TCG)"
check 'grep -aq "^USBPT-SECOND-RC=1 vivarium: .*busy\|^USBPT-SECOND-RC=1 vivarium: .*claimed" "$o"' "a second VM's attach of the same device: one line ($(val USBPT-SECOND-RC))"
check '[ "$(val USBPT-DETACH-RC)" = 0 ] && grep -aq "^USBPT-GUEST: GUEST-SH: sda-gone" "$o"' "usb detach: /dev/sda vanished in the guest"
check '[ "$(val USBPT-HOST-DRIVER-DETACHED)" = usb-storage ]' "after detach L1's usb-storage has it again ($(val USBPT-HOST-DRIVER-DETACHED))"
check '[ "$(val USBPT-REATTACH-RC)" = 0 ] && [ "$(val USBPT-HOST-DRIVER-REATTACHED)" != usb-storage ]' "attached again"
check '[ "$(val USBPT-HOST-DRIVER-STOPPED)" = usb-storage ]' "after the VM stops L1's usb-storage has it again ($(val USBPT-HOST-DRIVER-STOPPED))"
check '[ "$(val USBPT-HOST-DRIVER-BEFORE-KILL)" != usb-storage ] && [ "$(val USBPT-HOST-DRIVER-AFTER-KILL)" = usb-storage ] &&
	grep -aq "USB .*: the VM process ended holding it; the host.s drivers have it again" <<<"$(val USBPT-KEEPER-SAID)"' \
	"after kill -9 of the VM process holding it, the keeper gave it back to L1's usb-storage ($(val USBPT-HOST-DRIVER-AFTER-KILL); vm.log: $(val USBPT-KEEPER-SAID))"
qline=$(grep -ao '^QEMU-GUEST-SH: md5=[0-9a-f]* ms=[0-9]*' "$o" | tail -n1)
qmd5=$(sed 's/.*md5=\([0-9a-f]*\).*/\1/' <<<"$qline") qms=${qline##*ms=}
if [ -n "$qline" ] && [ "$qmd5" = "$(val USBPT-HOST-MD5)" ] && [ "${qms:-0}" -gt 0 ] 2>/dev/null; then
	echo "# QEMU usb-host read the same 16 MiB in $qms ms: $((16 * 1024 * 1000 / qms)) KiB/s; vivarium ${gms:-?} ms"
else
	echo "# no QEMU usb-host figure (${qline:-no line}): see '--- qemu' in the output"
fi
[ "$errors" -eq 0 ] || { tail -n 100 "$o"; fail "$errors checks failed"; }
echo "PASS"
