#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_compat_media.sh CASE [VIVARIUM] - guest compatibility (issue 18):
# real boot media from Debian packages, on this host's /dev/kvm.
#
# CASE:
#   memtest-kernel   Debian's memtest86+ (/boot/memtest86+x64.bin, a Linux
#                    boot-protocol image) booted directly with --kernel,
#                    2 vCPUs, 256 MiB, console=ttyS0,115200
#   memtest-bios     the same through SeaBIOS and the linuxboot option ROM
#                    (--firmware bios --kernel: memtest86+'s real-mode setup
#                    runs first); QEMU's -kernel takes this path too
#   isolinux         an installer-style ISO (tests/images/mk-isolinux-iso.sh:
#                    El Torito no-emulation, isolinux.bin + ldlinux.c32)
#                    booted by SeaBIOS from the CD-ROM; ISOLINUX reads its
#                    config, shows "boot:" and boots memtest86+ from the CD
#
# Goal: memtest86+ draws its screen on COM1 with the guest's RAM
# ("Memory  :  255MB" for 256 MiB) and CPUs ("CPU: 2 Cores"), and its
# tests #0 and #1 complete without errors (a later test runs, "Errors: 0";
# memtest86+ redraws its serial screen now and then, so test #2 itself may
# never show).
#
# On a /dev/kvm without hardware virtualization (KVM's instruction emulator,
# kvm_pvm: see `vivarium doctor`) neither medium can reach that goal, with
# QEMU as with vivarium (both stop at the same instruction):
# - memtest86+'s 64-bit startup stops at its first x87 instruction (FINIT,
#   bytes 9b db e3), which the emulator does not emulate;
# - ISOLINUX prints its banner and stops at an IRET in its 32-bit protected
#   mode code (byte cf), which the emulator emulates only in real mode.
# There the test checks everything up to that point (the image loaded and
# entered, the guest's own code running to that instruction at an address
# inside the image; SeaBIOS booting the CD and ISOLINUX loading itself)
# and that the VMM stopped exactly there, and says "PASS (partial)".
#
# Environment:
#   VIVARIUM_E2E_VMM=qemu   use QEMU on /dev/kvm instead (the control)
#   VIVARIUM_QEMU_ACCEL=tcg with QEMU: its own CPU emulation instead of KVM,
#                           which runs both media to the goal on any host
#                           (checks the media and the goal's checks; about
#                           a minute or more: slow under load)
#   VIVARIUM_COMPAT_TIMEOUT seconds to wait for the goal (default 50)
#   VIVARIUM_IMAGE_CACHE    where built images are kept
#
# Exit: 0 pass, 1 fail, 77 skip (no /dev/kvm, media or tools missing).

set -u

here=$(cd "$(dirname "$0")" && pwd)
images=$here/../images
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
# shellcheck source=tests/guest/lib.sh
. "$here/lib.sh"

case_=${1:-}
viv=${2:-}
vmm=${VIVARIUM_E2E_VMM:-vivarium}
timeout_s=${VIVARIUM_COMPAT_TIMEOUT:-50}
MEMTEST=/boot/memtest86+x64.bin

case $case_ in
memtest-kernel|memtest-bios|isolinux) ;;
*) fail "usage: test_compat_media.sh memtest-kernel|memtest-bios|isolinux [VIVARIUM]" ;;
esac
require_vmm
[ -f "$MEMTEST" ] || skip "no $MEMTEST (apt-get install memtest86+)"
if [ "$case_" = isolinux ]; then
	[ -f /usr/lib/ISOLINUX/isolinux.bin ] || skip "no isolinux.bin (apt-get install isolinux)"
	[ -f /usr/lib/syslinux/modules/bios/ldlinux.c32 ] || skip "no ldlinux.c32 (apt-get install syslinux-common)"
	command -v xorriso >/dev/null || skip "xorriso is not installed"
fi
# The host's KVM: hardware virtualization, or the instruction emulator.
if grep -qwE 'vmx|svm' /proc/cpuinfo; then emulated=0; else emulated=1; fi
accel=kvm
if [ "$vmm" = qemu ] && [ "${VIVARIUM_QEMU_ACCEL:-kvm}" = tcg ]; then
	accel=tcg
	emulated=0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-compat.XXXXXX")
pid=
trap vmm_cleanup EXIT
log=$work/serial.log
: >"$log"

if [ "$case_" = isolinux ]; then
	image=$("$images/get-image.sh" isolinux-iso) || fail "could not build the isolinux ISO"
	cp "$image" "$work/cd.iso"
fi
if [ "$vmm" = qemu ]; then
	printf '\370\003' >"$work/sercon-port"
	# shellcheck disable=SC2054 # commas inside QEMU option values
	cmd=(qemu-system-x86_64 -accel "$accel" -machine pc,kernel_irqchip=split -m 256 -smp 2
		-nic none -display none -monitor none -serial "file:$log"
		-fw_cfg "name=etc/sercon-port,file=$work/sercon-port")
	case $case_ in
	memtest-*) cmd+=(-kernel "$MEMTEST" -append "console=ttyS0,115200") ;;
	isolinux) cmd+=(-boot d -drive "file=$work/cd.iso,format=raw,media=cdrom,readonly=on") ;;
	esac
else
	cmd=("$viv" run --memory 256M --cpus 2 --serial "file:$log" --display none --nic none)
	case $case_ in
	memtest-kernel) cmd+=(--kernel "$MEMTEST" --append "console=ttyS0,115200") ;;
	memtest-bios) cmd+=(--firmware bios --kernel "$MEMTEST" --append "console=ttyS0,115200") ;;
	isolinux) cmd+=(--firmware bios --cdrom "$work/cd.iso" --boot cdrom) ;;
	esac
fi
if [ "$accel" = tcg ]; then
	echo "# qemu, TCG: ${cmd[*]}"
else
	echo "# $vmm on /dev/kvm ($([ $emulated = 1 ] && echo "instruction emulator" || echo "hardware virtualization")): ${cmd[*]}"
fi
vmm_start "${cmd[@]}"

# COM1 without terminal escapes (memtest86+ positions its text with them:
# each escape becomes a line break) and carriage returns.
clean_log() {
	sed 's/\x1b\[[0-9;?]*[a-zA-Z]/\n/g; s/\x1bc//g' "$log" | tr -d '\r'
}

# Boot stages in order, "pattern|description" (an ERE without "|"); the
# last one seen says where a failed boot stopped.  The last is the goal.
stages=()
if [ "$case_" = isolinux ]; then
	stages+=(
		"SeaBIOS|SeaBIOS started"
		"Booting from DVD/CD|SeaBIOS boots the CD (El Torito)"
		"ISOLINUX 6|ISOLINUX loaded itself (its banner)"
		"VIVARIUM-ISOLINUX-CFG|ISOLINUX read isolinux.cfg"
		"boot:|ISOLINUX's prompt"
	)
fi
stages+=(
	"Memtest86\+ v|memtest86+ started (its screen on COM1)"
	"Memory  :|memtest86+ sized the RAM"
	"#[2-9]  \[|memtest86+ tests #0 and #1 completed (a later test runs)"
)
goal=${stages[-1]%%|*}
goal_reached() {
	[ -n "${stage_time[$goal]:-}" ] || return 1
	status=goal
}
# QEMU stays up, paused, after an emulation failure.
vmm_stopped() {
	[ "$vmm" = qemu ] && grep -aq "emulation failure" "$work/vmm.out" || return 1
	status="stopped by an emulation failure"
}
watch_stages -E "$timeout_s"
sleep 0.3
text=$(clean_log)
echo "# $vmm: $status after $(elapsed) s; last stage: $last_stage"

report_tail() {
	echo "# last lines of COM1 (escapes removed):"
	grep -av '^[[:space:]]*$' <<<"$text" | tail -n 15 | sed 's/^/#   | /'
	if [ -s "$work/vmm.out" ]; then
		echo "# $vmm's own output:"
		grep -av '^extra data\|^[A-Z][A-Z0-9 ]*=' "$work/vmm.out" | tail -n 8 | sed 's/^/#   | /'
	fi
}

errors=0

if [ "$status" = goal ]; then
	check 'grep -aqE "Memory  : +25[0-9]MB" <<<"$text"' "memtest86+ sees the guest's 256 MiB ('Memory  :  25xMB')"
	check 'grep -aqE "CPU: 2 Cores" <<<"$text"' "memtest86+ sees 2 CPUs ('CPU: 2 Cores')"
	check '! grep -aqE "Errors: +[1-9]" <<<"$text"' "no memory errors reported"
	[ "$case_" = isolinux ] && check '[ -n "${stage_time[boot:]:-}" ]' "ISOLINUX showed its prompt"
	if [ "$errors" -ne 0 ]; then
		report_tail
		fail "$errors checks failed"
	fi
	echo "PASS"
	exit 0
fi

# The goal was not reached.  On the instruction emulator, check the boot
# went exactly as far as the emulator allows and stopped where it must.
# stop_rip_byte: "RIP BYTE" of the emulation failure the VMM reported.
stop_rip_byte() {
	if [ "$vmm" = qemu ]; then
		grep -aq "emulation failure" "$work/vmm.out" || return 1
		printf '%s %s\n' "$(sed -n 's/.*[RE]IP=\([0-9a-f]*\) .*/\1/p' "$work/vmm.out" | head -n1)" \
			"$(sed -n 's/^Code=.*<\([0-9a-f][0-9a-f]\)>.*/\1/p' "$work/vmm.out" | head -n1)"
	else
		sed -n 's/.*KVM internal error .* at RIP 0x\([0-9a-f]*\) (instruction bytes \([0-9a-f][0-9a-f]\).*/\1 \2/p' \
			"$work/vmm.out" | head -n1 | grep .
	fi
}
if [ "$emulated" = 1 ] && [ "$status" != timeout ] && [ "$status" != running ] && rb=$(stop_rip_byte); then
	rip=$((16#${rb% *}))
	byte=${rb#* }
	echo "# the emulator stopped at 0x$(printf %x "$rip"), instruction byte $byte"
	case $case_ in
	memtest-*)
		# The protected-mode image sits at 1 MiB; init_size bounds
		# what it runs from.
		size=$(($(stat -c %s "$MEMTEST") - ($(od -An -tu1 -j497 -N1 "$MEMTEST") + 1) * 512))
		check '[ "$rip" -ge $((0x100200)) ] && [ "$rip" -lt $((0x100000 + size)) ]' \
			"memtest86+ ran its own 64-bit code from its entry (RIP inside the image at 1 MiB, $size bytes)"
		check '[ "$byte" = 9b ]' "it stopped at its first x87 instruction (FWAIT/FINIT, 9b), which the emulator lacks"
		check '! grep -aq "Memtest86+" <<<"$text"' "no memtest86+ screen on COM1 before that (it prints only after FINIT)"
		[ "$case_" = memtest-bios ] &&
			check 'grep -aq "Booting from ROM" <<<"$text"' "SeaBIOS ran the linuxboot option ROM"
		;;
	isolinux)
		check '[ -n "${stage_time[ISOLINUX 6]:-}" ]' "SeaBIOS booted the CD and ISOLINUX loaded itself (banner on COM1)"
		check '[ "$byte" = cf ]' "ISOLINUX stopped at an IRET (cf) in protected mode, which the emulator emulates only in real mode" ;;
	esac
	if [ "$errors" -ne 0 ]; then
		report_tail
		fail "$errors checks failed"
	fi
	echo "PASS (partial: this /dev/kvm is an instruction emulator; the rest of the boot needs hardware virtualization or the rig)"
	exit 0
fi

report_tail
case $status in
timeout) fail "memtest86+ did not complete its first tests within ${timeout_s} s; stopped after: $last_stage" ;;
*) fail "$vmm $status before the goal; last stage: $last_stage" ;;
esac
