#!/bin/bash
# SPDX-License-Identifier: MIT
#
# boot_time.sh - how fast, and in how much memory, does a VMM boot Linux?
#
# Usage:
#   bench/boot_time.sh [--vivarium PATH] [--peers "qemu qemu-qboot"]
#                      [--vmm-timeout SEC] [--timeout SEC]
#
# In ONE run of the nested rig (tests/rig/rig.sh) it boots the same guest -
# the Debian kernel from /boot and the busybox initramfs from
# tests/rig/mkguest-initramfs.sh, 2 vCPUs, 1 GiB, quiet serial console - with
# each VMM in turn, on L1's /dev/kvm:
#   qemu        qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split
#               -kernel/-initrd, SeaBIOS + linuxboot ROM
#   qemu-qboot  the same with -bios qboot.rom (QEMU's minimal firmware)
#   vivarium    vivarium run --kernel/--initrd (default build/app/vivarium)
# and prints, for each:
#   to GUEST-INIT  L1 time from starting the VMM to the guest's first /init
#                  line (GUEST-INIT) reaching the VMM's stdout: busybox `ts`
#                  stamps every output line in L1 as it arrives
#   whole run      L1 time from starting the VMM to its exit (guest powered off)
#   peak RSS       the VMM's maximum resident set size (busybox time -v, i.e.
#                  wait4's ru_maxrss: guest RAM the guest touched included)
#
# Everything runs under TCG: only compare figures from the same run.  A VMM
# that fails still gets a row, with its exit status and last output lines.
#
# Exit: 0 when every VMM booted the guest, 1 otherwise, 125 rig failure.

set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$here/..
rig=$root/tests/rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$root/tests/rig/lib.sh"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
viv=$root/build/app/vivarium
peers="qemu qemu-qboot"
vmm_timeout=150
timeout_s=300

while [ $# -gt 0 ]; do
	case $1 in
	--vivarium) viv=$2; shift 2 ;;
	--peers) peers=$2; shift 2 ;;
	--vmm-timeout) vmm_timeout=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	-h|--help) sed -n '/^# Usage:/,/^# Exit:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "boot_time: unknown option '$1'" >&2; exit 2 ;;
	esac
done

bench_setup boot_time vivarium-bench
"$root/tests/rig/mkguest-initramfs.sh" "$work/guest.cpio.gz" || exit 125

vmms=$peers
rig_args=(--qemu --file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz")
if [ -x "$viv" ]; then
	rig_args+=(--bin "$viv:/bin/vivarium")
	vmms="$vmms vivarium"
else
	echo "boot_time: $viv is not built; measuring the peers only" >&2
fi

# The script L1 runs.  Each VMM's output goes through `ts`, so every line
# carries the L1 time it arrived at; VMM-START/VMM-END bracket the VMM.
cat >"$work/bench.sh" <<EOF
vmm_timeout=$vmm_timeout
vmms="$vmms"
EOF
cat >>"$work/bench.sh" <<'EOF'
append="console=ttyS0 quiet panic=-1"
vmm_cmd() {
	case $1 in
	qemu) echo qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split \
		-m 1G -smp 2 -nographic -no-reboot -nic none ;;
	qemu-qboot) echo qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split \
		-m 1G -smp 2 -nographic -no-reboot -nic none -bios /usr/share/qemu/qboot.rom ;;
	vivarium) echo vivarium run --cpus 2 --memory 1G --serial stdio ;;
	esac
}
for name in $vmms; do
	set -- $(vmm_cmd $name)
	if [ "$name" = vivarium ]; then
		set -- "$@" --kernel /guest/vmlinuz --initrd /guest/initrd.cpio.gz --append "$append"
	else
		set -- "$@" -kernel /guest/vmlinuz -initrd /guest/initrd.cpio.gz -append "$append"
	fi
	echo "=== $name: $*"
	{
		echo VMM-START
		busybox time -v -o /tmp/$name.time timeout $vmm_timeout "$@" </dev/null 2>&1
		echo VMM-END
	} | ts '%.s' | tee /tmp/$name.log
	rc=$(awk -F': ' '/Exit status/ { print $2 } /terminated by signal/ { n = split($0, w, " "); print "signal-" w[n] }' /tmp/$name.time | tail -n1)
	rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' /tmp/$name.time)
	tr -d '\r' </tmp/$name.log | awk -v name=$name -v rc="${rc:-?}" -v rss="${rss:-?}" '
		$2 == "VMM-START" { start = $1 }
		/GUEST-INIT/ && !init { init = $1 }
		/GUEST-INIT/ && !guptime { sub(/.*GUEST-INIT uptime=/, ""); guptime = $1 }
		$2 == "VMM-END" { end = $1 }
		END {
			printf "BENCH-RESULT name=%s rc=%s rss_kb=%s init_s=%s total_s=%s guest_uptime=%s\n", name, rc, rss,
				init ? sprintf("%.2f", init - start) : "-", end ? sprintf("%.2f", end - start) : "-",
				guptime ? guptime : "-"
		}'
	if [ "$rc" != 0 ] || ! grep -q GUEST-INIT /tmp/$name.log; then
		tr -d '\r' </tmp/$name.log | grep -v 'VMM-START\|VMM-END' | grep . | tail -n 3 | cut -d' ' -f2- |
			sed "s/^/BENCH-NOTE $name: /"
	fi
done
EOF

echo "boot_time: one rig run, VMMs: $vmms (guest: $kernel, 2 vCPUs, 1 GiB)" >&2
rig_bench
l1_boot=$(grep -ao 'RIG-STAGE=command uptime=[0-9.]*' <<<"$out" | cut -d= -f3)

echo
echo "Linux boot time in the nested rig (L1 time; TCG: compare within one run only)"
echo "L1 boot to /dev/kvm ready: ${l1_boot:-?} s; whole rig run: $wall s wall"
echo
printf '%-12s %14s %11s %12s %6s %14s\n' VMM "to GUEST-INIT" "whole run" "peak RSS" exit "guest uptime"
ok=1
for name in $vmms; do
	line=$(grep -a "^BENCH-RESULT name=$name " <<<"$out" | tail -n1)
	if [ -z "$line" ]; then
		printf '%-12s %s\n' "$name" "no result (the rig stopped first)"
		ok=0
		continue
	fi
	field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	rss=$(field rss_kb)
	case $rss in ''|*[!0-9]*) rss_h='?' ;; *) rss_h="$((rss / 1024)) MiB" ;; esac
	secs() { case $1 in ''|-) echo - ;; *) echo "$1 s" ;; esac; }
	init=$(field init_s)
	printf '%-12s %14s %11s %12s %6s %14s\n' "$name" "$(secs "$init")" "$(secs "$(field total_s)")" \
		"$rss_h" "$(field rc)" "$(secs "$(field guest_uptime)")"
	[ "$(field rc)" = 0 ] && [ "$init" != - ] || ok=0
done
notes=$(grep -a '^BENCH-NOTE ' <<<"$out" | sed 's/^BENCH-NOTE /  /')
if [ -n "$notes" ]; then
	echo
	echo "Failures, last output lines:"
	echo "$notes"
fi
[ "$rig_status" -eq 0 ] || { echo "boot_time: the rig run failed (status $rig_status)" >&2; exit 125; }
[ "$ok" = 1 ] || exit 1
