#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_linux_boot.sh VIVARIUM - end-to-end: boot a real Linux guest.
#
# Boots the Debian kernel (/boot/vmlinuz-*) with the busybox test initramfs
# (tests/rig/mkguest-initramfs.sh) on 2 vCPUs and 1 GiB, serial console on
# stdio, and checks what the guest reports: GUEST-CPUS=2, GUEST-MEM-KB just
# under 1 GiB, and that vivarium exits 0 after the guest powers off.
#
# Where: if `VIVARIUM doctor` succeeds (hardware virtualization), vivarium runs
# on this host; otherwise inside the nested rig (tests/rig/rig.sh), on L1's
# /dev/kvm.
#
# Environment:
#   VIVARIUM_E2E_VMM=qemu   boot the same guest with QEMU instead (a check of
#                           the rig and of the test itself)
#   VIVARIUM_E2E_RIG=1      use the rig even where the host could run it
#   VIVARIUM_E2E_TIMEOUT    seconds for the whole run (default 180)
#
# Exit: 0 pass, 1 fail, 77 skip (no qemu-system-x86_64 or no guest kernel).

set -u

here=$(cd "$(dirname "$0")" && pwd)
rig=$here/../rig/rig.sh
mkguest=$here/../rig/mkguest-initramfs.sh
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
viv=${1:-}
vmm=${VIVARIUM_E2E_VMM:-vivarium}
timeout_s=${VIVARIUM_E2E_TIMEOUT:-180}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86); the rig needs it"
kernel=$(newest_kernel)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* guest kernel (apt-get install linux-image-amd64)"
[ -r "$kernel" ] || skip "$kernel is not readable by $(id -un)"
case $vmm in
vivarium) [ -n "$viv" ] && [ -x "$viv" ] || fail "vivarium binary '$viv' does not exist (build it first)" ;;
qemu) ;;
*) fail "VIVARIUM_E2E_VMM must be vivarium or qemu, not '$vmm'" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$mkguest" "$work/guest.cpio.gz" || fail "could not build the guest initramfs"

append="console=ttyS0 quiet panic=-1"

# The VMM command line, for the given kernel and initrd paths.
vmm_cmd() {
	if [ "$vmm" = qemu ]; then
		echo "qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split -m 1G -smp 2" \
			"-kernel $1 -initrd $2 -append '$append' -nographic -no-reboot"
	else
		echo "$3 run --kernel $1 --initrd $2 --append '$append'" \
			"--cpus 2 --memory 1G --serial stdio"
	fi
}

direct=0
runs_directly "$vmm" "$viv" "$work" && direct=1

start=$(date +%s)
if [ "$direct" = 1 ]; then
	echo "# host has hardware virtualization: running $vmm directly"
	cmd=$(vmm_cmd "$kernel" "$work/guest.cpio.gz" "$viv")
	echo "# $cmd"
	timeout -k 10 "$timeout_s" sh -c "$cmd" </dev/null 2>&1 | tee "$work/out"
	status=${PIPESTATUS[0]}
else
	echo "# no hardware virtualization here: running $vmm in the nested rig"
	[ "$vmm" = vivarium ] && [ -f "$work/doctor.out" ] && sed 's/^/#   doctor: /' "$work/doctor.out"
	cmd=$(vmm_cmd /guest/vmlinuz /guest/initrd.cpio.gz vivarium)
	echo "# L1: $cmd"
	if [ "$vmm" = qemu ]; then extra=(--qemu); else extra=(--bin "$viv:/bin/vivarium"); fi
	# In L1, stdin is the serial console's tty (as under `make run`); on a
	# failure, show what L1's kernel said (kvm errors stay off the console).
	"$rig" --retries 3 --timeout "$timeout_s" "${extra[@]}" \
		--file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz" \
		-- "$cmd; rc=\$?; [ \$rc -eq 0 ] || { echo '--- L1 dmesg, last lines:'; dmesg | tail -n 25; }; exit \$rc" \
		</dev/null 2>&1 | tee "$work/out"
	status=${PIPESTATUS[0]}
fi
elapsed=$(( $(date +%s) - start ))

out=$(rig_output "$work/out")
cpus=$(grep -ao 'GUEST-CPUS=[0-9]*' <<<"$out" | tail -n1 | cut -d= -f2)
mem=$(grep -ao 'GUEST-MEM-KB=[0-9]*' <<<"$out" | tail -n1 | cut -d= -f2)
init=$(grep -ao 'GUEST-INIT uptime=[0-9.]*' <<<"$out" | tail -n1 | cut -d= -f2)
pci=$(grep -a 'GUEST-PCI=' <<<"$out" | tail -n1 | cut -d= -f2)
uart=$(grep -ao 'GUEST-TTYS0=[0-9]*' <<<"$out" | tail -n1 | cut -d= -f2)

echo "# $vmm exit status $status, guest init at guest uptime ${init:-?}s, whole run ${elapsed}s"
errors=0
check() {
	if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); fi
}
check '[ -n "$init" ]' "guest reached /init (GUEST-INIT)"
check '[ "${cpus:-0}" = 2 ]' "guest sees 2 CPUs (GUEST-CPUS=${cpus:-missing})"
check '[ "${mem:-0}" -ge 900000 ] && [ "${mem:-0}" -le 1048576 ]' \
	"guest MemTotal within 900000..1048576 kB (GUEST-MEM-KB=${mem:-missing})"
case "$pci" in *0000:00:00.0*) havebridge=1 ;; *) havebridge=0 ;; esac
check '[ "$havebridge" = 1 ]' "guest enumerates the PCI host bridge 00:00.0 (GUEST-PCI=${pci:-missing})"
# Linux's serial_core port types: 4 is PORT_16550A.
check '[ "${uart:-0}" = 4 ]' "Linux drives ttyS0 as a 16550A (GUEST-TTYS0=${uart:-missing})"
check '[ "$status" -eq 0 ]' "$vmm exited 0 after the guest powered off (status $status)"
[ "$errors" -eq 0 ] || fail "$errors of 6 checks failed"
echo "PASS"
