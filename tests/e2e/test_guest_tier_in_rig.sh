#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the guest-tier binaries (tests/guest/) inside the nested rig, where
# /dev/kvm has hardware (AMD-V) semantics instead of this host's emulator:
# real-mode and long-mode entry, exits, interrupts, SMP bring-up and every
# reset path (the triple fault included) on a KVM like the users' own.
# Arguments: the guest test binaries.
set -u
here=$(cd "$(dirname "$0")" && pwd)
rig="$here/../rig/rig.sh"
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
	echo "SKIP: qemu-system-x86_64 is not installed (needed for the nested rig)"
	exit 77
fi
if ! ls /boot/vmlinuz-* >/dev/null 2>&1; then
	echo "SKIP: no /boot/vmlinuz-* for the rig's L1 kernel (install linux-image-amd64)"
	exit 77
fi
bins=""
names=""
for b in "$@"; do
	n=$(basename "$b")
	bins="$bins --bin $b:/bin/$n"
	names="$names $n"
done
# guest_firmware boots SeaBIOS and the VGA BIOS: give L1 the same images.
# A binary that skips (77: guest_uefi without OVMF, which L1 does not get
# yet) says so and does not fail the tier.
files=""
for bios in /usr/share/seabios/bios-256k.bin /usr/share/seabios/vgabios-stdvga.bin; do
	[ -r "$bios" ] && files="$files --file $bios:$bios"
done
# Each binary gets 60 s (the whole tier takes ~15 s).  Under the rig's
# emulated SVM an L2 guest has, rarely, never come back from KVM_RUN (seen
# once in guest_exits' MSI test, L1 otherwise healthy): a binary that times
# out runs once more, saying so, and a second timeout fails the tier.
# shellcheck disable=SC2086
# Each test has 60 s (and one retry): a rig that times out means L1 itself
# stopped, which the rig then runs again once.
# A synthetic guest that triple-faults where it never does by design
# (guest_iofd_stress once, with the binary then crashing in the reset) is
# the rig's doing as well: QEMU's L2 guests reset spuriously in the rig
# too.  Such a binary also runs once more, saying so.
RIG_RETRY_ON_TIMEOUT=1 exec "$rig" --retries 3 --timeout 300 $bins $files -- "rc=0; for t in $names; do echo \"== \$t\"; timeout 60 \$t >/tmp/t.out 2>&1; st=\$?; cat /tmp/t.out; if [ \$st = 124 ] || [ \$st = 143 ]; then echo \"RETRY: \$t timed out after 60 s; running it once more\"; timeout 60 \$t; st=\$?; elif [ \$st != 0 ] && [ \$st != 77 ] && grep -q 'triple fault' /tmp/t.out; then echo \"RETRY: \$t failed (status \$st) after a triple fault of its guest in the rig; running it once more\"; timeout 60 \$t; st=\$?; fi; if [ \$st = 77 ]; then echo \"SKIPPED: \$t (the reason is above)\"; elif [ \$st != 0 ]; then echo \"FAILED: \$t (status \$st)\"; rc=1; fi; done; exit \$rc"
