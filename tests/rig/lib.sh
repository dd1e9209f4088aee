# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# tests/rig/lib.sh - sourced by the rig's bash scripts and their users
# (tests/e2e/, bench/) for what they would otherwise each write again: which
# kernel to boot, and how to build a busybox initramfs.  Defines functions
# only.

# rig_output FILE: what `rig.sh --retries N` printed (saved in FILE), without
# carriage returns, from its last run only: the output of a run in which L1
# wedged must not be read as if it came from the run that finished.
rig_output() {
	tr -d '\r' <"$1" | tac | sed '/^RIG-ATTEMPT=/,$d' | tac
}

# rig_test_setup VIVARIUM: what every rig test checks first.  Exits 77
# (skip, saying why) without QEMU or a guest kernel, 1 without the vivarium
# binary; otherwise sets $kernel to the newest /boot/vmlinuz-*.
rig_test_setup() {
	if ! command -v qemu-system-x86_64 >/dev/null; then
		echo "SKIP: qemu-system-x86_64 is not installed (the rig needs it)"
		exit 77
	fi
	kernel=$(newest_kernel)
	if [ -z "$kernel" ]; then
		echo "SKIP: no /boot/vmlinuz-* guest kernel (apt-get install linux-image-amd64)"
		exit 77
	fi
	if [ -z "$1" ] || [ ! -x "$1" ]; then
		echo "FAIL: vivarium binary '$1' does not exist"
		exit 1
	fi
}

# newest_kernels: /boot/vmlinuz-* paths, newest version first.
newest_kernels() {
	ls -1 /boot/vmlinuz-* 2>/dev/null | sort -rV
}

# newest_kernel: the newest /boot/vmlinuz-*, or nothing.
newest_kernel() {
	newest_kernels | head -n1
}

# static_busybox: the path of a statically linked busybox; fails if none.
static_busybox() {
	local b
	for b in /bin/busybox /usr/bin/busybox; do
		if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

# busybox_root DIR BUSYBOX: a minimal root file system in DIR: the usual
# directories, BUSYBOX as /bin/busybox with a symlink per applet, and root
# in /etc/passwd and /etc/group.
busybox_root() {
	local applet
	(
		cd "$1" &&
		mkdir -p bin sbin usr/bin usr/sbin proc sys dev tmp run root etc &&
		cp "$2" bin/busybox &&
		for applet in $("$2" --list-full); do
			[ -e "$applet" ] || ln -s /bin/busybox "$applet"
		done &&
		echo "root:x:0:0:root:/root:/bin/sh" >etc/passwd &&
		echo "root:x:0:" >etc/group
	)
}

# cpio_of DIR [-L]: DIR's contents as a newc archive on stdout, in a stable
# order, owned by root; -L stores what symlinks point to instead.
cpio_of() {
	(cd "$1" && find ${2:+-L} . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 ${2:+-L} --quiet)
}

# runs_directly VMM VIVARIUM WORKDIR: whether an e2e test can run VMM
# (vivarium or qemu) on this host instead of in the rig: the host has
# hardware virtualization (vivarium's doctor says so; for QEMU the CPU flag),
# and VIVARIUM_E2E_RIG=1 does not force the rig.
runs_directly() {
	[ "${VIVARIUM_E2E_RIG:-0}" != 1 ] || return 1
	if [ "$1" = vivarium ]; then
		"$2" doctor >"$3/doctor.out" 2>&1
	else
		grep -qwE 'vmx|svm' /proc/cpuinfo
	fi
}
