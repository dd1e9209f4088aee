#!/bin/bash
# SPDX-License-Identifier: MIT
#
# disk.sh - a Linux guest's virtio-blk request rate and throughput,
# vivarium against QEMU (and against itself without eventfd doorbells).
#
# Usage:
#   bench/disk.sh [--vivarium PATH] [--exits] [--iofd LIST] [--rounds N]
#                 [--mib N] [--requests N] [--timeout SEC]
#
# In ONE run of the nested rig (tests/rig/rig.sh) it boots the same guest -
# the Debian kernel from /boot and the initramfs of
# tests/rig/mkguest-initramfs.sh --wait --disk, 2 vCPUs, 512 MiB - with a scratch
# raw disk of N+16 MiB in L1's RAM (tmpfs) as virtio-blk, once per VMM:
#   qemu       -drive file=DISK,format=raw,if=virtio (cache=writeback,
#              aio=threads: the page cache and a thread pool, as vivarium)
#   vivarium   --disk DISK,format=raw,if=virtio
#   viv-exits  (--exits) the same vivarium with VIVARIUM_IOFD=off: every
#              notify an MMIO exit, every MSI a KVM_SIGNAL_MSI
#   qemu-exits (--exits) QEMU with -device virtio-blk-pci,ioeventfd=off
#              (notifies exit; its MSIs keep their irqfds): how the same
#              change moves the peer here
#   viv-V      (--iofd V,...) the same vivarium with VIVARIUM_IOFD=V for
#              each V (ioeventfd, irqfd: one of the two only; off:
#              viv-exits without qemu-exits)
# (vivarium when PATH, default build/app/vivarium, is built).  The guest
# times, with busybox dd and O_DIRECT on /dev/vda (one request per block,
# nothing from its own cache), by its /proc/uptime:
#   read 1 MiB   N MiB (--mib, default 64) in 1 MiB reads
#   read 4 KiB   --requests (default 4096) 4 KiB reads, one at a time
#   write 4 KiB  as many 4 KiB writes, one at a time
# One request in flight: each costs a notify and an interrupt, which is
# what the doorbells change.  Everything runs under TCG, L1 and L2 alike:
# compare figures of one run only.  --rounds N (default 1) boots every VMM
# N times, taking turns (round 1: each VMM, round 2: each again...), so
# that the machine's load swings fall on all of them; each figure is then
# the median of its rounds, and their range is printed below.  One row per
# VMM, each figure with its ratio to QEMU's (above 1: faster than QEMU).
#
# Exit: 0 when every measured VMM gave every figure, 1 otherwise, 125 when
# the rig itself failed.

set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$here/..
rig=$root/tests/rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$root/tests/rig/lib.sh"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
viv=$root/build/app/vivarium
mib=64
requests=4096
timeout_s=900
variants=
rounds=1

while [ $# -gt 0 ]; do
	case $1 in
	--vivarium) viv=$2; shift 2 ;;
	--exits) variants="$variants off qoff"; shift ;;
	--iofd) variants="$variants $(echo "$2" | tr , ' ')"; shift 2 ;;
	--mib) mib=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--requests) requests=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	-h|--help) sed -n '/^# Usage:/,/^# Exit:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "disk: unknown option '$1'" >&2; exit 2 ;;
	esac
done
case $mib in ''|*[!0-9]*) echo "disk: --mib wants a number" >&2; exit 2 ;; esac
case $requests in ''|*[!0-9]*) echo "disk: --requests wants a number" >&2; exit 2 ;; esac
case $rounds in ''|0|*[!0-9]*) echo "disk: --rounds wants a number from 1" >&2; exit 2 ;; esac

bench_setup disk vivarium-bench-disk
"$root/tests/rig/mkguest-initramfs.sh" --wait --disk "$work/guest.cpio.gz" || exit 125

vmms=qemu
viv_note=
rig_args=(--qemu --file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz")
if [ ! -x "$viv" ]; then
	viv_note="not available ($viv is not built)"
else
	rig_args+=(--bin "$viv:/bin/vivarium")
	vmms="qemu vivarium"
	for v in $variants; do
		case $v in
		off) vmms="$vmms viv-exits" ;;
		qoff) vmms="$vmms qemu-exits" ;;
		ioeventfd|irqfd) vmms="$vmms viv-$v" ;;
		*) echo "disk: --iofd takes off, ioeventfd, irqfd" >&2; exit 2 ;;
		esac
		timeout_s=$((timeout_s + 600))
	done
fi
timeout_s=$((timeout_s * rounds))

# The script L1 runs: BENCH-RESULT lines, one per VMM.
cat >"$work/bench.sh" <<EOF
vmms="$vmms"
mib=$mib
requests=$requests
rounds=$rounds
EOF
cat >>"$work/bench.sh" <<'EOF'
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
args="console=ttyS0 quiet panic=-1 vivblk.read=$mib vivblk.read4k=$requests vivblk.write4k=$requests"
round=0
while [ $round -lt $rounds ]; do
round=$((round + 1))
for vmm in $vmms; do
	# A fresh disk each time: no VMM finds another's pages or writes.
	rm -f /tmp/disk.img
	dd if=/dev/zero of=/tmp/disk.img bs=1048576 count=$((mib + 16)) 2>/dev/null
	if [ $vmm = qemu ] || [ $vmm = qemu-exits ]; then
		drive="-drive file=/tmp/disk.img,format=raw,if=virtio"
		[ $vmm = qemu-exits ] && drive="-drive file=/tmp/disk.img,format=raw,if=none,id=d0 -device virtio-blk-pci,drive=d0,ioeventfd=off"
		set -- qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split -m 512M -smp 2 \
			-display none -monitor none -no-reboot -serial file:/tmp/serial.log -nic none \
			$drive -kernel /guest/vmlinuz -initrd /guest/initrd.cpio.gz -append "$args"
	else
		case $vmm in
		viv-exits) envs=VIVARIUM_IOFD=off ;;
		viv-*) envs=VIVARIUM_IOFD=${vmm#viv-} ;;
		*) envs= ;;
		esac
		set -- env $envs VIVARIUM_LOG=info vivarium run --cpus 2 --memory 512M --display none \
			--serial file:/tmp/serial.log --disk /tmp/disk.img,format=raw,if=virtio \
			--kernel /guest/vmlinuz --initrd /guest/initrd.cpio.gz --append "$args"
	fi
	echo "=== $vmm (round $round): $*"
	rm -f /tmp/serial.log
	t0=$(ms)
	timeout 400 "$@" </dev/null >/tmp/vmm.out 2>&1 &
	vpid=$!
	state=ok
	until grep -q GUEST-WAITING /tmp/serial.log 2>/dev/null; do
		if ! kill -0 $vpid 2>/dev/null; then state=exited; break; fi
		if [ $(($(ms) - t0)) -gt 300000 ]; then state=timeout; break; fi
		sleep 0.5
	done
	kill $vpid 2>/dev/null
	wait $vpid 2>/dev/null
	log=$(tr -d '\r' </tmp/serial.log)
	line() { echo "$log" | grep "^GUEST-BLK-$1=" | tail -n1; }
	field() { echo "$2" | grep -o " $1=[^ ]*" | cut -d= -f2; }
	res="BENCH-RESULT vmm=$vmm round=$round state=$state"
	for w in READ READ4K WRITE4K; do
		l=$(line $w)
		st=${l#GUEST-BLK-$w=}
		res="$res $w=${st%% *} ${w}_bytes=$(field bytes "$l") ${w}_ms=$(field ms "$l")"
	done
	echo "$res"
	grep 'notifies' /tmp/vmm.out | sed "s/^/BENCH-NOTE $vmm: /"
	if [ $state != ok ]; then
		{ tr -d '\r' </tmp/vmm.out; echo "$log"; } | grep . | tail -n 5 | sed "s/^/BENCH-NOTE $vmm: /"
	fi
done
done
EOF

echo "disk: one rig run, VMMs: $vmms, $rounds round(s); $mib MiB in 1 MiB reads, $requests 4 KiB reads and writes (guest: $kernel, 2 vCPUs, 512 MiB, virtio-blk)" >&2
rig_bench
# fig1 LINE WHAT: MiB/s (READ) or requests/s (READ4K, WRITE4K) of one
# BENCH-RESULT line; nothing if that measurement failed.
fig1() {
	local line=$1 want
	f() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	[ "$(f "$2")" = ok ] || return
	case $2 in
	READ) want=$((mib * 1048576))
		awk -v b="$(f READ_bytes)" -v ms="$(f READ_ms)" -v want=$want \
			'BEGIN { if (b == want && ms > 0) printf "%.2f", b / 1048576 / (ms / 1000) }' ;;
	*) want=$((requests * 4096))
		awk -v b="$(f "$2"_bytes)" -v ms="$(f "$2"_ms)" -v want=$want \
			'BEGIN { if (b == want && ms > 0) printf "%.0f", b / 4096 / (ms / 1000) }' ;;
	esac
}
# figs VMM WHAT: that figure of each of the VMM's rounds, sorted.
figs() {
	grep -a "^BENCH-RESULT vmm=$1 " <<<"$out" | while read -r line; do
		fig1 "$line" "$2"
		echo
	done | grep . | sort -g
}
# fig VMM WHAT: the median over the rounds (nothing if none succeeded).
fig() {
	local fmt=%.0f

	[ "$2" = READ ] && fmt=%.2f
	figs "$1" "$2" | median "$fmt"
}

echo
echo "virtio-blk in the nested rig (L2 times; TCG: compare within one run only)"
echo "O_DIRECT on /dev/vda, one request at a time; $rounds round(s), medians; whole rig run: $wall s wall"
echo "(in brackets: the ratio to QEMU's figure, above 1 = faster)"
echo
printf '%-14s%26s%26s%26s\n' "" "read 1 MiB (MiB/s)" "read 4 KiB, QD1 (req/s)" "write 4 KiB, QD1 (req/s)"
ok=1
for vmm in $vmms; do
	row=
	for what in READ READ4K WRITE4K; do
		v=$(fig "$vmm" $what)
		[ -n "$v" ] || ok=0
		r=
		[ "$vmm" = qemu ] || [ -z "$v" ] || r=$(ratio "$v" "$(fig qemu $what)")
		row="$row$(printf '%26s' "${v:--}${r:+ [$r]}")"
	done
	printf '%-14s%s\n' "$vmm" "$row"
done
[ -z "$viv_note" ] || echo "vivarium: $viv_note"
if [ "$rounds" -gt 1 ]; then
	echo
	echo "range over the rounds (lowest-highest):"
	for vmm in $vmms; do
		row=
		for what in READ READ4K WRITE4K; do
			row="$row$(printf '%26s' "$(figs "$vmm" $what | range)")"
		done
		printf '%-14s%s\n' "$vmm" "$row"
	done
fi
echo
grep -a '^BENCH-NOTE' <<<"$out" | awk '!seen[$0]++'
if [ "$rig_status" != 0 ]; then
	echo "disk: the rig ended with status $rig_status" >&2
	[ "$rig_status" = 125 ] && exit 125
	exit 1
fi
[ "$ok" = 1 ] || exit 1
exit 0
