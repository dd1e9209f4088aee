#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_firmware_boot.sh MEDIUM [VIVARIUM] - firmware test: SeaBIOS (or OVMF)
# boots GRUB from a CD or a disk, and GRUB's menu appears on the serial console.
#
# MEDIUM:
#   cdrom         the GRUB ISO (tests/images/mk-grub-iso.sh) on the ATAPI
#                 CD-ROM, booted as a CD (El Torito)
#   uefi-cdrom    GRUB for UEFI on an ISO (mk-grub-iso.sh --efi) on the
#                 CD-ROM, booted by OVMF (--firmware uefi, a fresh copy of
#                 OVMF_VARS_4M.fd); skipped where the host's KVM cannot run
#                 OVMF at all (an instruction-emulating KVM stops at SEC's
#                 first x87 instruction, QEMU as vivarium)
#   disk-ata      the GRUB disk (tests/images/mk-grub-disk.sh) on the IDE
#                 controller
#   disk-virtio   the same disk on virtio-blk
#
# Runs the VMM on this host's /dev/kvm (an instruction emulator here is fast
# enough for firmware and GRUB) with 128 MiB, COM1 into a file, and watches
# that file.  Passes when, before the timeout, GRUB has printed
# "VIVARIUM-GRUB-CFG medium=cdrom|disk" (it read its grub.cfg from the medium),
# drawn both menu entries ("Vivarium test entry A"/"B"), and its countdown
# has ticked (two different "executed automatically in Ns" values: the timer
# interrupt reaches the guest).  The VMM must still be running then; the test
# stops it.  On failure it says the last boot stage seen on COM1 and shows
# the end of the log.
#
# Environment:
#   VIVARIUM_E2E_VMM=qemu   use QEMU instead (the control: checks the image
#                           and the test)
#   VIVARIUM_FW_TIMEOUT     seconds to wait for the menu (default 150)
#   VIVARIUM_IMAGE_CACHE    where built images are kept (tests/images/get-image.sh)
#
# Exit: 0 pass, 1 fail, 77 skip (no /dev/kvm, or tools to build the image
# or run QEMU are missing).

set -u

here=$(cd "$(dirname "$0")" && pwd)
images=$here/../images
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
# shellcheck source=tests/images/lib.sh
. "$images/lib.sh"
# shellcheck source=tests/guest/lib.sh
. "$here/lib.sh"

medium=${1:-}
viv=${2:-}
vmm=${VIVARIUM_E2E_VMM:-vivarium}
timeout_s=${VIVARIUM_FW_TIMEOUT:-150}

case $medium in
cdrom) kind=grub-iso; cfg_medium=cdrom; tools="grub-mkrescue xorriso" ;;
uefi-cdrom) kind=grub-efi-iso; cfg_medium=cdrom; tools="grub-mkrescue xorriso mformat" ;;
disk-ata|disk-virtio) kind=grub-disk; cfg_medium=disk; tools="grub-mkimage sfdisk mkfs.ext4" ;;
*) fail "usage: test_firmware_boot.sh cdrom|uefi-cdrom|disk-ata|disk-virtio [VIVARIUM]" ;;
esac
require_vmm
if [ "$medium" = uefi-cdrom ]; then
	[ -d "$GRUB_EFI_DIR" ] || skip "no GRUB for UEFI in $GRUB_EFI_DIR (apt-get install grub-efi-amd64-bin)"
	[ -r "$OVMF_CODE" ] && [ -r "$OVMF_VARS" ] || skip "no $OVMF_CODE (apt-get install ovmf)"
else
	[ -d "$GRUB_PC_DIR" ] || skip "no GRUB for BIOS in $GRUB_PC_DIR (apt-get install grub-pc-bin)"
fi
for t in $tools; do
	command -v "$t" >/dev/null || skip "$t is not installed (needed to build the $kind image)"
done

image=$("$images/get-image.sh" "$kind") || fail "could not build the $kind image"
work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-fw.XXXXXX")
pid=
trap vmm_cleanup EXIT
# A private copy: the VMM may lock or (for a disk) write it.
cp --sparse=always "$image" "$work/medium"
[ "$medium" = uefi-cdrom ] && cp "$OVMF_VARS" "$work/vars.fd"
log=$work/serial.log
: >"$log"

if [ "$vmm" = qemu ]; then
	# SeaBIOS mirrors its screen to COM1 (0x3f8) when fw_cfg has
	# etc/sercon-port, as vivarium sets it: the same text on COM1.
	printf '\370\003' >"$work/sercon-port"
	# shellcheck disable=SC2054 # commas inside QEMU option values
	cmd=(qemu-system-x86_64 -accel kvm -machine pc,kernel_irqchip=split -m 128
		-nic none -display none -monitor none -serial "file:$log"
		-fw_cfg "name=etc/sercon-port,file=$work/sercon-port")
	case $medium in
	cdrom) cmd+=(-boot d -drive "file=$work/medium,format=raw,media=cdrom,readonly=on") ;;
	uefi-cdrom) cmd+=(-boot d -drive "file=$work/medium,format=raw,media=cdrom,readonly=on"
		-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
		-drive "if=pflash,format=raw,unit=1,file=$work/vars.fd") ;;
	disk-ata) cmd+=(-drive "file=$work/medium,format=raw,if=ide") ;;
	disk-virtio) cmd+=(-drive "file=$work/medium,format=raw,if=virtio") ;;
	esac
else
	cmd=("$viv" run --firmware bios --memory 128M --serial "file:$log")
	case $medium in
	cdrom) cmd+=(--cdrom "$work/medium" --boot cdrom) ;;
	uefi-cdrom) cmd=("$viv" run --firmware uefi --vars "$work/vars.fd" --memory 128M
		--serial "file:$log" --cdrom "$work/medium" --boot cdrom) ;;
	disk-ata) cmd+=(--disk "$work/medium,format=raw,if=ata" --boot disk) ;;
	disk-virtio) cmd+=(--disk "$work/medium,format=raw,if=virtio" --boot disk) ;;
	esac
fi
echo "# $vmm on /dev/kvm: ${cmd[*]}"
vmm_start "${cmd[@]}"

# The log without terminal escapes and carriage returns.
clean_log() {
	sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' "$log" | tr -d '\r'
}

# Boot stages in order, as "pattern|description"; the last one seen says
# where a failed boot stopped.  SeaBIOS's lines reach COM1 only through its
# serial console mirror (etc/sercon-port).
stages=(
	"SeaBIOS|SeaBIOS started (its banner)"
	"BdsDxe|OVMF's boot manager started (BdsDxe)"
	"Booting from|SeaBIOS chose a boot device"
	"GRUB loading|GRUB's boot sector loaded core.img (disk)"
	"Welcome to GRUB|GRUB's core started"
	"VIVARIUM-GRUB-CFG medium=|GRUB read its grub.cfg"
	"$GRUB_MENU_ENTRY_A|GRUB drew its menu"
)
# The goal: the menu drawn and its countdown ticking.
goal_reached() {
	local ticks

	ticks=$(grep -aoE "$GRUB_COUNTDOWN_RE" <<<"$text" | sort -u | wc -l)
	[ -n "${stage_time[$GRUB_MENU_ENTRY_A]:-}" ] && [ "$ticks" -ge 2 ] || return 1
	status=menu
	menu_time=$(elapsed)
}
menu_time=
watch_stages -F "$timeout_s"

text=$(clean_log)
report_tail() {
	echo "# last lines of COM1 ($log, escapes removed):"
	tail -c 1500 <<<"$text" | tr -s '\n' | tail -n 12 | sed 's/^/#   | /'
	if [ -s "$work/vmm.out" ]; then
		echo "# $vmm's own output:"
		tail -n 10 "$work/vmm.out" | sed 's/^/#   | /'
	fi
}

# An instruction-emulating KVM (this project's build hosts) cannot run OVMF:
# it stops at SEC's first x87 instruction (fwait, 9b), with either VMM.
if [ "$medium" = uefi-cdrom ] && [ "$status" != menu ] &&
	grep -aq "KVM internal error" "$work/vmm.out" 2>/dev/null; then
	report_tail
	skip "this host's KVM cannot run OVMF: $(grep -a -m1 -oE 'KVM internal error.*' "$work/vmm.out")"
fi

errors=0
echo "# $vmm: $status after $(elapsed) s; last stage: $last_stage"
check 'grep -aqF "VIVARIUM-GRUB-CFG medium=$cfg_medium" <<<"$text"' \
	"GRUB read its grub.cfg from the $cfg_medium (VIVARIUM-GRUB-CFG medium=$cfg_medium)"
check 'grep -aqF "$GRUB_MENU_ENTRY_A" <<<"$text" && grep -aqF "$GRUB_MENU_ENTRY_B" <<<"$text"' \
	"GRUB menu on COM1 ('$GRUB_MENU_ENTRY_A', '$GRUB_MENU_ENTRY_B')"
check '[ "$(grep -aoE "$GRUB_COUNTDOWN_RE" <<<"$text" | sort -u | wc -l)" -ge 2 ]' \
	"GRUB's countdown ticks (timer interrupts reach the guest)"
check '[ "$status" = menu ]' "$vmm still running when the menu was up (status: $status)"
if [ "$errors" -ne 0 ]; then
	report_tail
	case $status in
	timeout) fail "no complete GRUB menu within ${timeout_s} s; stopped after: $last_stage" ;;
	exited*) fail "$vmm $status before the menu was complete; last stage: $last_stage" ;;
	*) fail "$errors checks failed" ;;
	esac
fi
echo "# menu complete after $menu_time s"
echo "PASS"
