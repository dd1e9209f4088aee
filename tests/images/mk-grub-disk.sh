#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mk-grub-disk.sh - a raw, MBR-partitioned, GRUB-booting disk image.
#
# Usage:
#   tests/images/mk-grub-disk.sh [--linux] OUT.img
#
# Layout: an MBR partition table with one bootable ext4 partition from
# sector 2048; GRUB for BIOS in the MBR (boot.img) and in the gap after it
# (core.img: biosdisk, part_msdos, ext2), reading /boot/grub from the
# partition.  Built without loop devices, mounts or grub-install: the file
# system is made in a file with `mkfs.ext4 -d` and copied in, and GRUB is
# installed by writing its images and patching them as grub-bios-setup does.
#
# Default flavour, menu only (a firmware test that runs on any /dev/kvm):
# grub.cfg prints "VIVARIUM-GRUB-CFG medium=disk" and draws the menu of
# mk-grub-iso.sh ("Vivarium test entry A"/"B", 600 s countdown) on the
# screen and on COM1.
#
# --linux: a disk that boots Linux (needs real virtualization: the rig).
# GRUB prints "VIVARIUM-GRUB-LINUX loading" and boots, with no menu, the
# newest /boot/vmlinuz-* and an initramfs whose /init prints
# "DISK-INITRAMFS uptime=<s>", loads the virtio-blk, ATA (ata_piix, sd_mod)
# and ext4 modules, waits for /dev/vda1 or /dev/sda1, prints
# "DISK-ROOT=<device>", mounts it and switch_roots into it.  There
# /sbin/vivarium-disk-init prints
#   DISK-ROOT-INIT uptime=<s>
#   DISK-ID=<the content of /etc/vivarium-disk-id, written at build time>
#   DISK-KERNEL-MD5=<md5 of /boot/vmlinuz as read back through the driver>
#   DISK-DATA-SHA256=<sha256 of /data.bin, 1 MiB it wrote from /dev/urandom>
#   DISK-TPM version=<N>, DISK-PCR0..7=<hex>, DISK-EVENTLOG=<hex of the
#     firmware's event log> with a TPM, else DISK-TPM=none
# writes /written-by-guest ("written by the vivarium disk test guest"),
# syncs, remounts / read-only, prints "DISK-GUEST-DONE" and powers off.
# Any failure prints "DISK-GUEST-FAIL=<what>" and powers off.
#
# Environment:
#   VIVARIUM_GUEST_KERNEL   the kernel for --linux (default: newest
#                           /boot/vmlinuz-*; its modules come from
#                           /lib/modules/<version>)
#
# Needs: grub-pc-bin, grub-common, e2fsprogs, fdisk (sfdisk); for --linux
# also busybox-static, cpio, gzip and a kernel with its modules
# (linux-image-amd64).  Runs as any user who can read the kernel.

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
# shellcheck source=tests/images/lib.sh
. "$here/lib.sh"

die() {
	echo "mk-grub-disk: $*" >&2
	exit 1
}

linux=0
case ${1:-} in
--linux) linux=1; shift ;;
-h|--help) sed -n '/^# Usage:/,/^# Needs:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
[ $# -eq 1 ] || die "usage: mk-grub-disk.sh [--linux] OUT.img"
out=$1

for tool in grub-mkimage sfdisk mkfs.ext4; do
	command -v $tool >/dev/null || die "$tool not found (apt-get install grub-common fdisk e2fsprogs)"
done
[ -f "$GRUB_PC_DIR/boot.img" ] || die "no GRUB for BIOS in $GRUB_PC_DIR (apt-get install grub-pc-bin)"

readonly SECTOR=512
readonly PART_START=2048	# sectors: 1 MiB, the usual alignment; GRUB's gap
# MBR boot code ends where the disk signature and partition table begin.
readonly MBR_CODE_BYTES=440
# boot.img's boot_drive_check: a 2-byte jmp that grub-bios-setup turns into
# two nops for hard disks, so a BIOS that passes a bad drive number in DL
# still boots from 0x80.
readonly BOOT_DRIVE_CHECK=0x66

stage=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-disk.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$root/boot/grub/i386-pc"

# ---------------------------------------------------------------- contents

# GRUB modules beyond the core's: loaded from /boot/grub/i386-pc.  No .lst
# files, so GRUB autoloads nothing it was not told to (the grub.cfg insmods
# what it uses).
grub_modules="normal serial terminal echo halt reboot"

if [ "$linux" = 0 ]; then
	grub_menu_cfg disk >"$root/boot/grub/grub.cfg"
	extra_mib=1
else
	grub_modules="$grub_modules linux"
	kernel=${VIVARIUM_GUEST_KERNEL:-$(newest_kernel)}
	[ -n "$kernel" ] && [ -r "$kernel" ] ||
		die "no readable guest kernel (/boot/vmlinuz-*: apt-get install linux-image-amd64)"
	kver=${kernel##*/vmlinuz-}
	moddir=/lib/modules/$kver
	[ -r "$moddir/modules.dep" ] || die "$moddir/modules.dep is missing (kernel $kernel)"
	busybox=$(static_busybox) || die "no statically linked busybox (apt-get install busybox-static)"

	cp "$kernel" "$root/boot/vmlinuz"
	busybox_root "$root" "$busybox"
	echo "vivarium-disk-$(date +%s)-$$" >"$root/etc/vivarium-disk-id"

	cat >"$root/sbin/vivarium-disk-init" <<'EOF'
#!/bin/sh
# The disk guest's init: read from the disk, write to it, power off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
fail() {
	echo "DISK-GUEST-FAIL=$*"
	sync
	poweroff -f
}
read up idle </proc/uptime
echo "DISK-ROOT-INIT uptime=$up"
echo "DISK-ID=$(cat /etc/vivarium-disk-id)"
echo "DISK-KERNEL-MD5=$(md5sum </boot/vmlinuz | cut -d' ' -f1)"
dd if=/dev/urandom of=/data.bin bs=65536 count=16 2>/dev/null || fail "writing /data.bin"
echo "DISK-DATA-SHA256=$(sha256sum </data.bin | cut -d' ' -f1)"
# With a TPM (vivarium --tpm): the PCRs the firmware measured the boot into,
# as the kernel reads them, and its event log for the test to replay.
if [ -e /sys/class/tpm/tpm0 ]; then
	echo "DISK-TPM version=$(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)"
	for i in 0 1 2 3 4 5 6 7; do
		echo "DISK-PCR$i=$(cat /sys/class/tpm/tpm0/pcr-sha256/$i 2>/dev/null)"
	done
	mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
	echo "DISK-EVENTLOG=$(od -An -v -tx1 /sys/kernel/security/tpm0/binary_bios_measurements 2>/dev/null | tr -d ' \n')"
else
	echo "DISK-TPM=none"
fi
EOF
	cat >>"$root/sbin/vivarium-disk-init" <<EOF
echo "$DISK_GUEST_TEXT" >$DISK_GUEST_FILE || fail "writing $DISK_GUEST_FILE"
EOF
	cat >>"$root/sbin/vivarium-disk-init" <<'EOF'
sync
mount -o remount,ro / || fail "remounting / read-only"
read up idle </proc/uptime
echo "DISK-GUEST-DONE uptime=$up"
poweroff -f
EOF
	chmod 755 "$root/sbin/vivarium-disk-init"

	# The initramfs: busybox, the block and ext4 modules, /init.
	initrd=$stage/initrd
	mkdir -p "$initrd"
	busybox_root "$initrd" "$busybox"
	mkdir -p "$initrd/newroot"
	# virtio_pci + virtio_blk (vda), ata_piix + sd_mod (sda), ext4 and the
	# crc32c its metadata checksums need (a crypto module, so no modules.dep
	# entry pulls it in).
	kmod_load_order "$moddir" virtio_pci virtio_blk ata_piix sd_mod crc32c_generic ext4 \
		>"$stage/modules" || die "kernel $kver lacks a module the disk guest needs"
	while read -r rel; do
		dst=$initrd/lib/modules/${rel%%.ko*}.ko
		mkdir -p "${dst%/*}"
		case $rel in
		*.ko.xz) xz -dc "$moddir/$rel" >"$dst" ;;
		*.ko.zst) zstd -qdc "$moddir/$rel" >"$dst" ;;
		*.ko.gz) gzip -dc "$moddir/$rel" >"$dst" ;;
		*) cp "$moddir/$rel" "$dst" ;;
		esac
		echo "/lib/modules/${rel%%.ko*}.ko"
	done <"$stage/modules" >"$initrd/modules"

	cat >"$initrd/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
read up idle </proc/uptime
echo "DISK-INITRAMFS uptime=$up"
fail() {
	echo "DISK-GUEST-FAIL=$*"
	echo "block devices: $(ls /sys/class/block 2>/dev/null | tr '\n' ' ')"
	poweroff -f
}
# No module loader: the kernel's requests for more modules go nowhere.
echo >/proc/sys/kernel/modprobe
for m in $(cat /modules); do
	insmod "$m" || fail "insmod $m"
done
root=
tries=0
while [ -z "$root" ]; do
	for dev in /dev/vda1 /dev/sda1; do
		[ -b "$dev" ] && root=$dev && break
	done
	[ -n "$root" ] && break
	tries=$((tries + 1))
	[ $tries -le 600 ] || fail "no /dev/vda1 or /dev/sda1 after 60 s"
	sleep 0.1
done
echo "DISK-ROOT=$root"
mount -t ext4 -o rw "$root" /newroot || fail "mounting $root"
[ -x /newroot/sbin/vivarium-disk-init ] || fail "$root has no /sbin/vivarium-disk-init"
for d in proc sys dev; do
	mount --move /$d /newroot/$d || fail "moving /$d"
done
exec switch_root /newroot /sbin/vivarium-disk-init
EOF
	chmod 755 "$initrd/init"
	cpio_of "$initrd" | gzip -6 >"$root/boot/initrd.gz"

	grub_cfg_serial >"$root/boot/grub/grub.cfg"
	cat >>"$root/boot/grub/grub.cfg" <<'EOF'
insmod linux
echo "VIVARIUM-GRUB-LINUX loading"
linux /boot/vmlinuz console=ttyS0 quiet panic=-1
initrd /boot/initrd.gz
echo "VIVARIUM-GRUB-LINUX booting"
boot
EOF
	# Room for the 1 MiB the guest writes, and the journal.
	extra_mib=12
fi

# shellcheck disable=SC2086 # a list of names
for m in $(grub_mod_closure $grub_modules); do
	cp "$GRUB_PC_DIR/$m.mod" "$root/boot/grub/i386-pc/"
done
# insmod what the config uses, ahead of it (no command.lst to autoload from).
{
	for m in $grub_modules; do echo "insmod $m"; done
	cat "$root/boot/grub/grub.cfg"
} >"$stage/grub.cfg"
mv "$stage/grub.cfg" "$root/boot/grub/grub.cfg"

# ---------------------------------------------------------------- file system

content_kib=$(du -sk "$root" | cut -f1)
part_mib=$(( content_kib / 1024 * 5 / 4 + extra_mib + 2 ))
part_sectors=$(( part_mib * 1024 * 1024 / SECTOR ))
# GRUB 2.06 reads ext4 with the features Debian 12's mke2fs gives it
# (metadata_csum, 64bit, flex_bg, extents).
mkfs.ext4 -q -F -L vivarium-test -U 9b1c3a2e-7d4f-4c3e-9a51-6e0b2f8d4c17 \
	-E root_owner=0:0 -d "$root" "$stage/part.img" "${part_mib}M" >/dev/null ||
	die "mkfs.ext4 failed"

# ---------------------------------------------------------------- disk

disk=$stage/disk.img
truncate -s $(( (PART_START + part_sectors) * SECTOR )) "$disk"
printf 'label: dos\nlabel-id: 0x56495641\nstart=%d, size=%d, type=83, bootable\n' \
	"$PART_START" "$part_sectors" | sfdisk -q "$disk" >/dev/null ||
	die "sfdisk could not write the partition table"
dd if="$stage/part.img" of="$disk" bs=$SECTOR seek=$PART_START conv=notrunc,sparse status=none

# core.img: what GRUB needs to read its own directory; $prefix (,msdos1)
# means partition 1 of whichever disk the BIOS booted.
grub-mkimage -O i386-pc -d "$GRUB_PC_DIR" -p '(,msdos1)/boot/grub' \
	-o "$stage/core.img" biosdisk part_msdos ext2 || die "grub-mkimage failed"
core_sectors=$(( ($(stat -c %s "$stage/core.img") + SECTOR - 1) / SECTOR ))
[ "$core_sectors" -lt "$PART_START" ] || die "core.img ($core_sectors sectors) does not fit before the partition"

# What grub-bios-setup does when it embeds core.img after the MBR:
# - boot.img's code into the MBR, keeping the disk signature and partition
#   table; its kernel_sector (LBA of core.img's first sector) is already 1,
#   its boot_drive byte 0xff (use DL);
# - the drive check turned into nops (hard disk);
# - core.img from LBA 1.  Its first sector (diskboot.img) ends in a
#   blocklist {start LBA 2, length, segment 0x820} that grub-mkimage has
#   filled for exactly this contiguous placement.
dd if="$GRUB_PC_DIR/boot.img" of="$disk" bs=$MBR_CODE_BYTES count=1 conv=notrunc status=none
printf '\x90\x90' | dd of="$disk" bs=1 seek=$((BOOT_DRIVE_CHECK)) conv=notrunc status=none
dd if="$stage/core.img" of="$disk" bs=$SECTOR seek=1 conv=notrunc status=none
blocklist=$(od -A n -t u2 -j $((SECTOR - 12)) -N 12 "$stage/core.img" | tr -s ' ')
# u16 words: start (4 words, LBA 2), length, segment.
# shellcheck disable=SC2086 # split the numbers
set -- $blocklist
[ "$1" = 2 ] && [ "$2$3$4" = 000 ] && [ "$5" = $((core_sectors - 1)) ] && [ "$6" = $((0x820)) ] ||
	die "core.img's blocklist is not {2, $((core_sectors - 1)), 0x820} but {$blocklist}: another GRUB version?"

mkdir -p "$(dirname "$out")"
mv "$disk" "$out"
