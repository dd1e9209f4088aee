#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mk-grub-iso.sh - a bootable El Torito CD image holding only a GRUB menu.
#
# Usage:
#   tests/images/mk-grub-iso.sh [--at-keyboard] [--efi] OUT.iso
#
# The ISO boots GRUB for BIOS (grub-mkrescue, i386-pc only).  Its grub.cfg
# prints "VIVARIUM-GRUB-CFG medium=cdrom" and draws a menu with the entries
# "Vivarium test entry A" and "Vivarium test entry B" on the screen and on
# COM1 (115200 8N1), with a 600 s countdown.  A firmware test: SeaBIOS, the
# ATAPI CD-ROM and El Torito, then GRUB's BIOS disk and timer use.
#
# Kept small (about 0.5 MiB) because on an instruction-emulating /dev/kvm
# every byte read and every module loaded costs time: only the GRUB modules
# the menu needs, no locales, fonts or themes.  Modules are not compressed
# (decompressing them in the guest would cost more than reading them).
#
# --efi: GRUB for UEFI instead (grub-efi-amd64-bin, x86_64-efi; mtools for
# the ISO's EFI system partition image), booted by OVMF from the CD's
# El Torito EFI entry: \EFI\BOOT\BOOTX64.EFI.
#
# Needs: grub-pc-bin (or grub-efi-amd64-bin), grub-common, xorriso.  Runs as
# any user.

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/images/lib.sh
. "$here/lib.sh"

die() {
	echo "mk-grub-iso: $*" >&2
	exit 1
}

case ${1:-} in
-h|--help) sed -n '/^# Usage:/,/^# Needs:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
kbd=0
if [ "${1:-}" = --at-keyboard ]; then
	kbd=1
	shift
fi
grub_dir=$GRUB_PC_DIR
if [ "${1:-}" = --efi ]; then
	grub_dir=$GRUB_EFI_DIR
	shift
fi
[ $# -eq 1 ] || die "usage: mk-grub-iso.sh [--at-keyboard] [--efi] OUT.iso"
out=$1

command -v grub-mkrescue >/dev/null || die "grub-mkrescue not found (apt-get install grub-common)"
command -v xorriso >/dev/null || die "xorriso not found (apt-get install xorriso)"
if [ "$grub_dir" = "$GRUB_EFI_DIR" ]; then
	[ -f "$GRUB_EFI_DIR/kernel.img" ] ||
		die "no GRUB for UEFI in $GRUB_EFI_DIR (apt-get install grub-efi-amd64-bin)"
	command -v mformat >/dev/null || die "mformat not found (apt-get install mtools)"
else
	[ -f "$GRUB_PC_DIR/eltorito.img" ] || [ -f "$GRUB_PC_DIR/cdboot.img" ] ||
		die "no GRUB for BIOS in $GRUB_PC_DIR (apt-get install grub-pc-bin)"
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-iso.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/root/boot/grub"
{
	# GRUB's own PS/2 driver polls the 8042 instead of asking the BIOS
	# (on this machine's KVM, keys through SeaBIOS's IRQ 1 handler never
	# reach GRUB, with QEMU as with vivarium: see tests/e2e/test_console_window.sh).
	[ "$kbd" = 1 ] && printf 'insmod at_keyboard\nterminal_input at_keyboard\n'
	grub_menu_cfg cdrom
} >"$stage/root/boot/grub/grub.cfg"

# GRUB autoloads every partition map partmap.lst names when it probes a
# disk, printing an error line (and spending a second here) for each one
# missing, so ship them all: they are a few KiB.
partmaps=$(tr '\n' ' ' <"$grub_dir/partmap.lst")
modules="normal serial terminal echo halt reboot keylayouts boot $partmaps"
[ "$grub_dir" = "$GRUB_PC_DIR" ] && modules="$modules at_keyboard"

# -d: one GRUB platform only, even where both are installed.
# shellcheck disable=SC2086
grub-mkrescue -d "$grub_dir" -o "$stage/out.iso" \
	--install-modules="$modules" --locales= --fonts= --themes= \
	"$stage/root" >"$stage/log" 2>&1 ||
	die "grub-mkrescue failed: $(tail -n 5 "$stage/log")"

mkdir -p "$(dirname "$out")"
mv "$stage/out.iso" "$out"
