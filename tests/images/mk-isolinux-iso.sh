#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mk-isolinux-iso.sh - a CD laid out the way Debian's installer ISOs are:
# ISOLINUX (Debian's isolinux + syslinux-common) booted by El Torito
# without emulation, with memtest86+ as its default entry.
#
# Usage:
#   tests/images/mk-isolinux-iso.sh OUT.iso
#
# Layout: /isolinux/isolinux.bin (the El Torito boot image, 4 sectors
# loaded, boot-info table patched by xorriso), /isolinux/boot.cat,
# /isolinux/ldlinux.c32, /isolinux/isolinux.cfg, and
# /live/memtest86+x64.bin (Debian's memtest86+, a Linux boot-protocol
# image).  isolinux.cfg turns on ISOLINUX's serial console (SERIAL 0
# 115200, so COM1 shows what the screen does), prints
# "VIVARIUM-ISOLINUX-CFG" (it read its config from the CD) and shows its
# "boot:" prompt; after 3 s (TIMEOUT 30) or on Enter it boots the default
# entry "memtest": memtest86+ with console=ttyS0,115200 (its screen on COM1
# too).
#
# Needs: isolinux, syslinux-common, memtest86+, xorriso.  Runs as any user.

set -euo pipefail

die() {
	echo "mk-isolinux-iso: $*" >&2
	exit 1
}

case ${1:-} in
-h|--help) sed -n '/^# Usage:/,/^# Needs:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
[ $# -eq 1 ] || die "usage: mk-isolinux-iso.sh OUT.iso"
out=$1

ISOLINUX_BIN=/usr/lib/ISOLINUX/isolinux.bin
LDLINUX_C32=/usr/lib/syslinux/modules/bios/ldlinux.c32
MEMTEST=/boot/memtest86+x64.bin
[ -f "$ISOLINUX_BIN" ] || die "no $ISOLINUX_BIN (apt-get install isolinux)"
[ -f "$LDLINUX_C32" ] || die "no $LDLINUX_C32 (apt-get install syslinux-common)"
[ -f "$MEMTEST" ] || die "no $MEMTEST (apt-get install memtest86+)"
command -v xorriso >/dev/null || die "xorriso not found (apt-get install xorriso)"

stage=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-isolinux.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/root/isolinux" "$stage/root/live"
cp "$ISOLINUX_BIN" "$LDLINUX_C32" "$stage/root/isolinux/"
cp "$MEMTEST" "$stage/root/live/memtest86+x64.bin"
# SERIAL must be the first line for ISOLINUX to echo everything to COM1.
cat >"$stage/root/isolinux/isolinux.cfg" <<CFG
SERIAL 0 115200
SAY VIVARIUM-ISOLINUX-CFG
PROMPT 1
TIMEOUT 30
DEFAULT memtest
LABEL memtest
  LINUX /live/memtest86+x64.bin
  APPEND console=ttyS0,115200
CFG

# The installer ISOs' El Torito options (debian-cd): no emulation, 4
# sectors loaded, ISOLINUX's boot-info table filled in.
xorriso -as mkisofs -quiet -o "$stage/out.iso" -r -J -V VIVARIUM_ISOLINUX \
	-b isolinux/isolinux.bin -c isolinux/boot.cat \
	-no-emul-boot -boot-load-size 4 -boot-info-table \
	"$stage/root" >"$stage/log" 2>&1 ||
	die "xorriso failed: $(tail -n 5 "$stage/log")"

mkdir -p "$(dirname "$out")"
mv "$stage/out.iso" "$out"
