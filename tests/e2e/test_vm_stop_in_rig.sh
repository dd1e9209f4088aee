#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_vm_stop_in_rig.sh VIVARIUM - `vivarium start`, then `vivarium stop`
# shuts a real Linux guest down through the ACPI power button.
#
# The guest: the Debian kernel with the test initramfs built --wait
# (tests/rig/mkguest-initramfs.sh: it loads button.ko and evdev.ko, prints
# GUEST-POWER-BUTTON=/dev/input/eventN and GUEST-WAITING, and powers off
# when the power button is pressed).  In the nested rig (or directly on a
# host with hardware virtualization): create the VM in the library, start
# it, wait for GUEST-WAITING in its serial.log, `vivarium stop` (no
# --force; 90 s before the plug would be pulled), and check that the guest
# saw the press and powered off by itself.
#
# VIVARIUM_E2E_VMM=qemu: the control: the same guest under QEMU in the rig,
# with the monitor's system_powerdown as the button (shows whether a
# failure is the guest's or vivarium's).
#
# Exit: 0 pass, 1 fail, 77 skip (no qemu-system-x86_64 or no kernel).

set -u
here=$(cd "$(dirname "$0")" && pwd)
rig=$here/../rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
viv=${1:-}
vmm=${VIVARIUM_E2E_VMM:-vivarium}
timeout_s=${VIVARIUM_E2E_TIMEOUT:-420}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (the rig needs it)"
kernel=$(newest_kernel)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* guest kernel (apt-get install linux-image-amd64)"
if [ "$vmm" = vivarium ]; then
	[ -n "$viv" ] && [ -x "$viv" ] || fail "vivarium binary '$viv' does not exist"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-stop.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/../rig/mkguest-initramfs.sh" --wait "$work/guest.cpio.gz" || fail "cannot build the guest initramfs"

append="console=ttyS0 quiet panic=-1"
# The script run where the VMM runs (L1, or this host).  $1: kernel,
# $2: initrd.  Prints STOP-RC, STOP-MS and the guest's serial log.
cat >"$work/vivarium.sh" <<EOF
k=\$1 i=\$2
export XDG_DATA_HOME=\${WORK:-/tmp}/data XDG_RUNTIME_DIR=\${WORK:-/tmp}/run
mkdir -p "\$XDG_RUNTIME_DIR" && chmod 700 "\$XDG_RUNTIME_DIR"
viv=\${VIV:-vivarium}
log=\$XDG_DATA_HOME/vivarium/vms/demo/serial.log
\$viv create demo --kernel "\$k" --initrd "\$i" --cpus 2 --memory 1G --append "$append" || exit 10
\$viv start demo || exit 11
n=0
until grep -q GUEST-WAITING "\$log" 2>/dev/null; do
	n=\$((n + 1))
	if [ \$n -gt 300 ] || ! \$viv status demo | grep -q running; then
		echo "guest never reached GUEST-WAITING:"; cat "\$log"; \$viv stop demo --force; exit 12
	fi
	sleep 1
done
echo "# guest waiting after about \$n s; vivarium stop demo"
t0=\$(date +%s)
\$viv stop demo --timeout 90
echo "STOP-RC=\$? STOP-S=\$((\$(date +%s) - t0))"
echo "--- serial.log"; tr -d '\r' <"\$log"
echo "--- vm.log"; cat "\$XDG_DATA_HOME/vivarium/vms/demo/vm.log"
exit 0
EOF
cat >"$work/qemu.sh" <<EOF
k=\$1 i=\$2
log=/tmp/serial.log
mkfifo /tmp/mon
qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split -m 1G -smp 2 \\
	-kernel "\$k" -initrd "\$i" -append "$append" -display none -no-reboot \\
	-serial file:\$log -monitor stdio </tmp/mon >/tmp/mon.out 2>&1 &
qpid=\$!
exec 3>/tmp/mon
n=0
until grep -q GUEST-WAITING \$log 2>/dev/null; do
	n=\$((n + 1)); [ \$n -gt 300 ] && { cat \$log; kill \$qpid; exit 12; }
	sleep 1
done
t0=\$(date +%s)
echo system_powerdown >&3
n=0
while kill -0 \$qpid 2>/dev/null; do
	n=\$((n + 1)); [ \$n -gt 90 ] && { kill \$qpid; break; }
	sleep 1
done
wait \$qpid
echo "STOP-RC=\$? STOP-S=\$((\$(date +%s) - t0))"
echo "--- serial.log"; tr -d '\r' <\$log
echo "--- vm.log"; echo "VM ended: exit status 0 (guest powered off) [QEMU control]"
exit 0
EOF

direct=0
if [ "$vmm" = vivarium ] && [ "${VIVARIUM_E2E_RIG:-0}" != 1 ] && "$viv" doctor >/dev/null 2>&1; then
	direct=1
fi
if [ "$direct" = 1 ]; then
	echo "# host has hardware virtualization: running vivarium directly"
	WORK=$work VIV=$viv timeout -k 10 "$timeout_s" sh "$work/vivarium.sh" "$kernel" "$work/guest.cpio.gz" \
		</dev/null 2>&1 | tee "$work/out"
else
	echo "# running $vmm in the nested rig"
	if [ "$vmm" = qemu ]; then extra=(--qemu); else extra=(--bin "$viv:/bin/vivarium"); fi
	"$rig" --retries 3 --timeout "$timeout_s" "${extra[@]}" \
		--file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz" \
		--file "$work/$vmm.sh:/rig/test.sh" \
		-- "sh /rig/test.sh /guest/vmlinuz /guest/initrd.cpio.gz" \
		</dev/null 2>&1 | tee "$work/out"
fi

out=$(rig_output "$work/out")
stop=$(grep -ao 'STOP-RC=[0-9]* STOP-S=[0-9]*' <<<"$out" | tail -n1)
rc=$(sed -n 's/STOP-RC=\([0-9]*\).*/\1/p' <<<"$stop")
secs=$(sed -n 's/.*STOP-S=\([0-9]*\)/\1/p' <<<"$stop")
errors=0
check() {
	if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); fi
}
check 'grep -q "GUEST-POWER-BUTTON=/dev/input/event" <<<"$out"' \
	"the guest found the ACPI power button ($(grep -ao 'GUEST-POWER-BUTTON=[^ ]*' <<<"$out" | head -n1))"
check 'grep -q "GUEST-WAITING" <<<"$out"' "the guest booted and waits"
check '[ "${rc:-x}" = 0 ]' "$vmm: stop returned 0 (${stop:-no STOP line})"
check 'grep -q "GUEST-POWER-BUTTON=pressed" <<<"$out"' "the guest saw the power button press"
check 'grep -q "guest powered off" <<<"$out" && ! grep -q "VM stopped (plug pulled)" <<<"$out"' \
	"the guest powered itself off (ACPI S5), not the plug pulled"
echo "# stop took ${secs:-?} s (rig time)"
[ "$errors" -eq 0 ] || fail "$errors of 5 checks failed"
echo "PASS"
