#!/bin/bash
# SPDX-License-Identifier: MIT
#
# get-image.sh - the path of a built test-guest image, building it only when
# its inputs changed.
#
# Usage:
#   tests/images/get-image.sh KIND
#
# KIND:
#   grub-iso          mk-grub-iso.sh            (GRUB menu on a CD)
#   grub-efi-iso      mk-grub-iso.sh --efi      (the menu, GRUB for UEFI)
#   grub-iso-kbd      mk-grub-iso.sh --at-keyboard (the same, GRUB reading
#                     the PS/2 keyboard itself instead of through the BIOS)
#   grub-disk         mk-grub-disk.sh           (GRUB menu on a disk)
#   grub-disk-linux   mk-grub-disk.sh --linux   (GRUB + Linux on a disk)
#   isolinux-iso      mk-isolinux-iso.sh        (ISOLINUX + memtest86+ on a
#                     CD, laid out as Debian's installer ISOs are)
#
# Prints the image's path on stdout (progress goes to stderr).  The image is
# shared: copy it before letting a guest write to it.  Images live in
# $VIVARIUM_IMAGE_CACHE (meson sets <build>/test-images; default
# ${XDG_CACHE_HOME:-~/.cache}/vivarium/images), named by a hash of their
# inputs: the build scripts, the GRUB, e2fsprogs and xorriso versions and,
# for the Linux disk, the kernel, its modules.dep and busybox.  Stale
# images of the same kind are removed.  Concurrent callers wait for each
# other (flock).
#
# Exit: 0 with the path printed; 1 if the image could not be built (the
# builder's message says why).

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
# shellcheck source=tests/images/lib.sh
. "$here/lib.sh"

die() {
	echo "get-image: $*" >&2
	exit 1
}

case ${1:-} in
-h|--help) sed -n '/^# Usage:/,/^# Exit:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
[ $# -eq 1 ] || die "usage: get-image.sh KIND"
kind=$1

# file_id PATH...: what identifies a file's version, cheaply.
file_id() {
	ls -lL --time-style=+%s "$@" 2>&1
}

case $kind in
grub-iso) builder=("$here/mk-grub-iso.sh"); ext=iso ;;
grub-iso-kbd) builder=("$here/mk-grub-iso.sh" --at-keyboard); ext=iso ;;
grub-efi-iso) builder=("$here/mk-grub-iso.sh" --efi); ext=iso ;;
grub-disk) builder=("$here/mk-grub-disk.sh"); ext=img ;;
grub-disk-linux) builder=("$here/mk-grub-disk.sh" --linux); ext=img ;;
isolinux-iso) builder=("$here/mk-isolinux-iso.sh"); ext=iso ;;
*) die "unknown image kind '$kind' (grub-iso, grub-iso-kbd, grub-efi-iso, grub-disk, grub-disk-linux, isolinux-iso)" ;;
esac

key=$(
	{
		echo "$kind"
		cat "${builder[0]}" "$here/lib.sh" "$here/../rig/lib.sh"
		file_id "$GRUB_PC_DIR/moddep.lst" "$GRUB_PC_DIR/kernel.img" "$GRUB_PC_DIR/boot.img"
		[ "$kind" = grub-efi-iso ] && file_id "$GRUB_EFI_DIR/moddep.lst" "$GRUB_EFI_DIR/kernel.img"
		grub-mkimage --version 2>&1 || true
		case $kind in
		grub-iso*) xorriso -version 2>&1 | head -n1 || true ;;
		isolinux-iso)
			xorriso -version 2>&1 | head -n1 || true
			file_id /usr/lib/ISOLINUX/isolinux.bin \
				/usr/lib/syslinux/modules/bios/ldlinux.c32 \
				/boot/memtest86+x64.bin ;;
		*) mkfs.ext4 -V 2>&1 | head -n1 || true ;;
		esac
		if [ "$kind" = grub-disk-linux ]; then
			kernel=${VIVARIUM_GUEST_KERNEL:-$(newest_kernel)}
			file_id "$kernel" "/lib/modules/${kernel##*/vmlinuz-}/modules.dep"
			file_id "$(static_busybox || echo /bin/busybox)"
		fi
	} | sha256sum | cut -c1-16
)

cache=$(image_cache_dir)
mkdir -p "$cache" || die "cannot create the image cache $cache"
image=$cache/$kind-$key.$ext

exec 9>"$cache/.lock"
flock 9
if [ ! -s "$image" ]; then
	echo "get-image: building $kind -> $image" >&2
	start=$(date +%s.%N)
	"${builder[@]}" "$image.tmp" || { rm -f "$image.tmp"; die "building $kind failed"; }
	mv "$image.tmp" "$image"
	# Older versions of this kind are stale now.
	for old in "$cache/$kind"-????????????????."$ext"; do
		[ "$old" = "$image" ] || rm -f "$old"
	done
	echo "get-image: built $kind in $(awk -v s="$start" -v e="$(date +%s.%N)" \
		'BEGIN { printf "%.1f", e - s }') s, $(stat -c %s "$image") bytes" >&2
fi
echo "$image"
