# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# tests/images/lib.sh - sourced by the test-guest image builders here and by
# the tests that boot their images.  Defines functions and constants only.
# Needs tests/rig/lib.sh sourced first (static_busybox, busybox_root, cpio_of).

# Constants for the scripts that source this file.
# shellcheck disable=SC2034

# GRUB for BIOS machines (grub-pc-bin).
GRUB_PC_DIR=/usr/lib/grub/i386-pc
# GRUB for UEFI machines (grub-efi-amd64-bin).
GRUB_EFI_DIR=/usr/lib/grub/x86_64-efi
# OVMF (Debian's ovmf): the code image and the variable store template.
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd

# What the GRUB test guests print, for the tests to look for.  The menu
# entries are drawn by GRUB's menu on every terminal, COM1 included.
GRUB_MENU_ENTRY_A="Vivarium test entry A"
GRUB_MENU_ENTRY_B="Vivarium test entry B"
# GRUB's countdown line: "... executed automatically in 600s."
GRUB_COUNTDOWN_RE='executed automatically in [0-9]+s'

# The disk guest's file that the guest writes, and its content.
DISK_GUEST_FILE=/written-by-guest
DISK_GUEST_TEXT="written by the vivarium disk test guest"

# grub_cfg_serial: the lines every test guest's grub.cfg starts with: output
# on COM1 as well as the screen.  Input stays at the default (the keyboard):
# with `terminal_input serial console`, GRUB ignored the PS/2 keyboard (see
# /work/shared/notes/environment.md, "Interrupts on this machine's KVM").
grub_cfg_serial() {
	cat <<'EOF'
serial --unit=0 --speed=115200
terminal_output serial console
EOF
}

# grub_menu_cfg MEDIUM: a grub.cfg that prints "VIVARIUM-GRUB-CFG
# medium=MEDIUM" and draws a two-entry menu with a 600 s countdown (long
# enough for any test to read it; the countdown ticking shows the timer
# interrupt reaches the guest).  Entry A powers off (ACPI), entry B reboots.
grub_menu_cfg() {
	grub_cfg_serial
	cat <<EOF
echo "VIVARIUM-GRUB-CFG medium=$1"
set timeout=600
set timeout_style=menu
menuentry "$GRUB_MENU_ENTRY_A" {
	echo "VIVARIUM-GRUB-ENTRY=A"
	halt
}
menuentry "$GRUB_MENU_ENTRY_B" {
	echo "VIVARIUM-GRUB-ENTRY=B"
	reboot
}
EOF
}

# grub_mod_closure MODULE...: MODULE and every module it needs
# ($GRUB_PC_DIR/moddep.lst), one name a line, sorted.
grub_mod_closure() {
	local todo=("$@") seen=" " m deps
	while [ ${#todo[@]} -gt 0 ]; do
		m=${todo[0]}
		todo=("${todo[@]:1}")
		case $seen in *" $m "*) continue ;; esac
		seen="$seen$m "
		deps=$(sed -n "s/^$m: *//p" "$GRUB_PC_DIR/moddep.lst")
		# shellcheck disable=SC2206 # module names have no spaces
		todo+=($deps)
	done
	tr ' ' '\n' <<<"$seen" | sed '/^$/d' | LC_ALL=C sort
}

# kmod_load_order MODDIR NAME...: the modules NAME... need, dependencies
# first, as paths relative to MODDIR (/lib/modules/<ver>), from
# MODDIR/modules.dep.  Fails naming a module it cannot find.
kmod_load_order() {
	local moddir=$1 name
	shift
	declare -A _kmod_seen=()
	_kmod_add() {
		local line rel dep
		line=$(grep -E "(^|/)${1//[-_]/[-_]}\\.ko(\\.[a-z]+)?:" "$moddir/modules.dep" | head -n1)
		if [ -z "$line" ]; then
			echo "kernel module $1 is not in $moddir/modules.dep" >&2
			return 1
		fi
		rel=${line%%:*}
		[ -z "${_kmod_seen[$rel]:-}" ] || return 0
		_kmod_seen[$rel]=1
		# modules.dep lists dependencies nearest first: load them last-first.
		for dep in $(tr ' ' '\n' <<<"${line#*:}" | tac); do
			dep=${dep##*/}
			_kmod_add "${dep%%.ko*}" || return
		done
		echo "$rel"
	}
	for name in "$@"; do
		_kmod_add "$name" || return
	done
}

# image_cache_dir: where built test images are kept between runs.
image_cache_dir() {
	echo "${VIVARIUM_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vivarium/images}"
}

# partition_sectors IMAGE: "START SIZE" (512-byte sectors) of IMAGE's first
# MBR partition, read with sfdisk.
partition_sectors() {
	sfdisk -d "$1" 2>/dev/null |
		sed -n 's/.*start= *\([0-9]*\), *size= *\([0-9]*\).*/\1 \2/p' | head -n1
}
