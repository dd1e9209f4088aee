#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mkguest-initramfs.sh - build the L2 test guest's initramfs (busybox-static).
#
# Usage:
#   tests/rig/mkguest-initramfs.sh [--shell | --wait | --drm | --count] OUTPUT.cpio.gz
#
# The guest's /init mounts proc, and at once prints
#   GUEST-INIT uptime=<seconds since the guest kernel started>
# then mounts sys and dev and prints
#   GUEST-CPUS=<online processors in /proc/cpuinfo>
#   GUEST-MEM-KB=<MemTotal from /proc/meminfo>
# and powers off (poweroff -f).  Console lines go to /dev/console, so boot the
# guest with console=ttyS0 to read them on the VMM's serial port.
#
# --shell: after the same lines, print a welcome message and run an
# interactive shell on the console; the guest powers off when it exits
# (for `make run`).
#
# --wait: after the same lines, print GUEST-WAITING and wait (for the ACPI
# power button; tests of `vivarium stop`).
#
# --drm: as --wait, but first load bochs-drm (bochs.ko and the DRM modules
# it needs, from modules.dep) so that fbcon takes tty0 over on the
# adapter's framebuffer, print GUEST-FB-DRIVER=<fb0's name>,
# GUEST-FB-MODE=<width>,<height> and GUEST-FB-BPP=<n>, write a banner to
# tty0 (GUEST-FB-TEXT) and then GUEST-WAITING.
#
# --count: as --wait, but a process prints GUEST-COUNT=<n> mono=<s> (n
# from 1, one a second; mono: /proc/uptime) for snapshot tests, and every
# line typed on the console comes back as GUEST-ECHO=<line>; the line
# "dmesg-check" also prints GUEST-DMESG-BAD=<n> and the kernel's log lines
# about an unstable clocksource, soft lockups, RCU stalls or hung tasks.
#
# The ACPI power button: the newest kernel's button.ko and evdev.ko go into
# the archive (Debian builds them as modules).  /init loads them and
# prints GUEST-POWER-BUTTON=/dev/input/eventN; a press then prints
# GUEST-POWER-BUTTON=pressed and powers the guest off (poweroff -f: ACPI
# S5), as acpid or logind would on a full system.
#
# Needs: busybox-static, cpio, gzip.  Runs as any user.

set -euo pipefail
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

die() {
	echo "mkguest-initramfs: $*" >&2
	exit 1
}

shell=0
wait=0
drm=0
count=0
case ${1:-} in
--shell) shell=1; shift ;;
--wait) wait=1; shift ;;
--drm) wait=1; drm=1; shift ;;
--count) wait=1; count=1; shift ;;
-h|--help) sed -n '/^# Usage:/,/^# Needs:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
[ $# -eq 1 ] || die "usage: mkguest-initramfs.sh [--shell | --wait | --drm | --count] OUTPUT.cpio.gz"
out=$1

busybox=$(static_busybox) || die "no statically linked busybox (apt-get install busybox-static)"

stage=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-guest.XXXXXX")
trap 'rm -rf "$stage"' EXIT

busybox_root "$stage" "$busybox"
echo vivarium-guest >"$stage/etc/hostname"

# The power button driver and the event interface, from the kernel the
# guest boots (the newest); uncompressed, as busybox insmod wants them.
kernel=$(newest_kernel)
moddir=/lib/modules/${kernel#/boot/vmlinuz-}/kernel
mkdir -p "$stage/lib/modules"
mods="drivers/acpi/button drivers/input/evdev"
if [ "$drm" = 1 ]; then
	# bochs.ko after its dependencies (modules.dep lists the deepest last).
	dep=/lib/modules/${kernel#/boot/vmlinuz-}/modules.dep
	line=$(grep -E '^kernel/drivers/gpu/drm/tiny/bochs\.ko[^:]*:' "$dep") ||
		die "no bochs.ko in $dep (the guest kernel has no bochs-drm)"
	order=
	for d in $(echo "${line#*:}" | tr ' ' '\n' | tac) "${line%%:*}"; do
		d=${d#kernel/}
		d=${d%%.ko*}
		mods="$mods $d"
		order="$order ${d##*/}"
	done
	echo "$order" >"$stage/lib/modules/drm-order"
fi
for m in $mods; do
	for ext in .ko .ko.xz .ko.zst .ko.gz; do
		src=$moddir/$m$ext
		[ -e "$src" ] || continue
		dst=$stage/lib/modules/${m##*/}.ko
		case $ext in
		.ko.xz) xz -dc "$src" >"$dst" ;;
		.ko.zst) zstd -qdc "$src" >"$dst" ;;
		.ko.gz) gzip -dc "$src" >"$dst" ;;
		*) cp "$src" "$dst" ;;
		esac
		break
	done
done

cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
read up idle </proc/uptime
echo "GUEST-INIT uptime=$up"
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
echo "GUEST-CPUS=$(grep -c '^processor' /proc/cpuinfo)"
echo "GUEST-MEM-KB=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
echo "GUEST-PCI=$(cd /sys/bus/pci/devices 2>/dev/null && echo *)"
echo "GUEST-TTYS0=$(cat /sys/class/tty/ttyS0/type 2>/dev/null)"
# The ACPI power button (fixed feature, LNXPWRBN): a press powers off.
for m in /lib/modules/evdev.ko /lib/modules/button.ko; do
	[ -e "$m" ] && insmod "$m" 2>/dev/null
done
pwrbtn=
for e in /sys/class/input/event*; do
	[ "$(cat "$e/device/name" 2>/dev/null)" = "Power Button" ] && pwrbtn=/dev/input/${e##*/}
done
echo "GUEST-POWER-BUTTON=${pwrbtn:-none}"
if [ -n "$pwrbtn" ]; then
	# One struct input_event (24 bytes on x86-64) is the press.
	(dd if="$pwrbtn" of=/dev/null bs=24 count=1 2>/dev/null &&
		echo "GUEST-POWER-BUTTON=pressed" && poweroff -f) &
fi
EOF

if [ "$shell" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
hostname -F /etc/hostname
export PS1='\h:\w# '
cpus=$(grep -c '^processor' /proc/cpuinfo)
mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
echo
echo "Welcome to the Vivarium demo guest: Linux $(uname -r), $cpus CPUs, $mem MiB."
echo "This is busybox sh on the serial console; 'poweroff -f' (or exit) ends the guest."
echo
# A subshell, so that setsid does not need to fork: the shell gets its own
# session with the console's real tty as controlling terminal (job control, ^C).
(exec setsid cttyhack sh -l)
EOF
fi

if [ "$drm" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
for m in $(cat /lib/modules/drm-order); do
	insmod /lib/modules/$m.ko || echo "GUEST-INSMOD-FAILED=$m"
done
n=0
while [ ! -e /sys/class/graphics/fb0/virtual_size ] && [ $n -lt 50 ]; do
	sleep 0.2; n=$((n + 1))
done
echo "GUEST-FB-DRIVER=$(cat /sys/class/graphics/fb0/name 2>/dev/null)"
echo "GUEST-FB-MODE=$(cat /sys/class/graphics/fb0/virtual_size 2>/dev/null)"
echo "GUEST-FB-BPP=$(cat /sys/class/graphics/fb0/bits_per_pixel 2>/dev/null)"
printf '\033[2J\033[H' >/dev/tty0
for i in 1 2 3 4 5 6 7 8; do
	echo "VIVARIUM GUEST FRAMEBUFFER CONSOLE LINE $i ########################################" >/dev/tty0
done
echo "GUEST-FB-TEXT"
EOF
fi

if [ "$count" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
(n=0; while :; do n=$((n + 1)); read up idle </proc/uptime
	echo "GUEST-COUNT=$n mono=$up"; sleep 1; done) &
(while read -r line; do
	echo "GUEST-ECHO=$line"
	if [ "$line" = dmesg-check ]; then
		bad=$(dmesg | grep -iE 'clocksource.*unstable|soft lockup|rcu.*stall|hung task')
		echo "GUEST-DMESG-BAD=$(printf '%s' "$bad" | grep -c .)"
		[ -n "$bad" ] && printf '%s\n' "$bad"
		echo "GUEST-DMESG-DONE"
	fi
done </dev/console) &
EOF
fi

if [ "$wait" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
echo "GUEST-WAITING"
while :; do sleep 3600; done
EOF
fi

cat >>"$stage/init" <<'EOF'
poweroff -f
EOF
chmod 755 "$stage/init"

mkdir -p "$(dirname "$out")"
cpio_of "$stage" | gzip -9 >"$out.tmp"
mv "$out.tmp" "$out"
