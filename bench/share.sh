#!/bin/bash
# SPDX-License-Identifier: MIT
#
# share.sh - a Linux guest's 9p shared folder, vivarium against QEMU's
# -virtfs, in one run of the nested rig.
#
# Usage:
#   bench/share.sh [--vivarium PATH] [--mib N] [--files N] [--rounds N]
#                  [--timeout SEC]
#
# L1 makes a folder in its RAM (tmpfs) holding a file "big" of N MiB
# (--mib, default 256) of random bytes, and boots the same guest - the
# Debian kernel from /boot and the initramfs of tests/rig/mkguest-initramfs.sh
# --desk, 1 vCPU, 512 MiB - with the folder shared as tag "hostshare", once
# per VMM:
#   qemu       -virtfs local,path=DIR,mount_tag=hostshare,security_model=none
#              (virtio-9p-pci, QEMU's own 9p server)
#   vivarium   --share DIR,tag=hostshare
# The guest mounts it (9p2000.L, trans=virtio, msize=512 KiB, the default
# cache=none: every read and write crosses the transport) and times, by its
# /proc/uptime:
#   read       "big" in 1 MiB blocks (dd)
#   write      N MiB in 1 MiB blocks, then fsync (dd conv=fsync)
#   create     --files (default 10000) empty files, one shell redirection
#              each
#   stat       ls -l of them all (a getattr each)
# Each VMM gets a fresh folder.  --rounds N boots every VMM N times, taking
# turns, and each figure is the median of its rounds (the range is printed
# below): this 2-core machine's load swings.  Everything runs under TCG,
# L1 and L2 alike: compare the figures of one run only.
#
# Exit: 0 when every VMM gave every figure, 1 otherwise, 125 when the rig
# itself failed.

set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$here/..
rig=$root/tests/rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$root/tests/rig/lib.sh"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
viv=$root/build/app/vivarium
mib=256
files=10000
rounds=1
timeout_s=1800

while [ $# -gt 0 ]; do
	case $1 in
	--vivarium) viv=$2; shift 2 ;;
	--mib) mib=$2; shift 2 ;;
	--files) files=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	-h|--help) sed -n '/^# Usage:/,/^# Exit:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "share: unknown option '$1'" >&2; exit 2 ;;
	esac
done
for v in "$mib" "$files" "$rounds"; do
	case $v in ''|0|*[!0-9]*) echo "share: --mib, --files and --rounds want numbers from 1" >&2; exit 2 ;; esac
done

bench_setup share vivarium-bench-share
"$root/tests/rig/mkguest-initramfs.sh" --desk "$work/guest.cpio.gz" || exit 125

vmms=qemu
rig_args=(--qemu --file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz")
if [ -x "$viv" ]; then
	rig_args+=(--bin "$viv:/bin/vivarium")
	vmms="qemu vivarium"
else
	echo "share: vivarium: not available ($viv is not built); QEMU only" >&2
fi
timeout_s=$((timeout_s * rounds))

cat >"$work/bench.sh" <<EOF
vmms="$vmms"
mib=$mib
files=$files
rounds=$rounds
EOF
cat >>"$work/bench.sh" <<'EOF'
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
args="console=ttyS0 quiet panic=-1 vivshare.bench=$mib vivshare.files=$files"
round=0
while [ $round -lt $rounds ]; do
round=$((round + 1))
for vmm in $vmms; do
	rm -rf /tmp/share
	mkdir -p /tmp/share
	dd if=/dev/urandom of=/tmp/share/big bs=1048576 count="$mib" 2>/dev/null
	if [ $vmm = qemu ]; then
		set -- qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split -m 512M \
			-display none -monitor none -no-reboot -serial file:/tmp/serial.log -nic none \
			-virtfs local,path=/tmp/share,mount_tag=hostshare,security_model=none \
			-kernel /guest/vmlinuz -initrd /guest/initrd.cpio.gz -append "$args"
	else
		set -- vivarium run --memory 512M --display none --nic none --agents off \
			--serial file:/tmp/serial.log --share /tmp/share,tag=hostshare \
			--kernel /guest/vmlinuz --initrd /guest/initrd.cpio.gz --append "$args"
	fi
	echo "=== $vmm (round $round): $*"
	rm -f /tmp/serial.log
	t0=$(ms)
	timeout 1500 "$@" </dev/null >/tmp/vmm.out 2>&1 &
	vpid=$!
	state=ok
	until grep -q GUEST-SHARE-DONE /tmp/serial.log 2>/dev/null; do
		if ! kill -0 $vpid 2>/dev/null; then state=exited; break; fi
		if [ $(($(ms) - t0)) -gt 1400000 ]; then state=timeout; break; fi
		sleep 0.5
	done
	kill $vpid 2>/dev/null
	wait $vpid 2>/dev/null
	log=$(tr -d '\r' </tmp/serial.log)
	res="BENCH-RESULT vmm=$vmm round=$round state=$state"
	for w in READ WRITE CREATE STAT; do
		l=$(echo "$log" | grep "^GUEST-SHARE-$w=" | tail -n1)
		st=${l#GUEST-SHARE-$w=}
		f() { echo "$l" | grep -o " $1=[^ ]*" | cut -d= -f2; }
		res="$res $w=${st%% *} ${w}_bytes=$(f bytes) ${w}_files=$(f files) ${w}_ms=$(f ms)"
	done
	echo "$res"
	if [ $state != ok ]; then
		{ tr -d '\r' </tmp/vmm.out; echo "$log"; } | grep . | tail -n 8 | sed "s/^/BENCH-NOTE $vmm: /"
	fi
done
done
EOF

echo "share: one rig run, VMMs: $vmms, $rounds round(s); $mib MiB read and written, $files files created and stat()ed (guest: $kernel, 1 vCPU, 512 MiB, 9p over virtio)" >&2
rig_bench

# fig1 LINE WHAT: MiB/s (READ, WRITE) or files/s (CREATE, STAT) of one
# BENCH-RESULT line; nothing if that measurement failed or came up short.
fig1() {
	local line=$1
	f() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	[ "$(f "$2")" = ok ] || return
	case $2 in
	READ|WRITE)
		awk -v b="$(f "$2"_bytes)" -v ms="$(f "$2"_ms)" -v want=$((mib * 1048576)) \
			'BEGIN { if (b == want && ms > 0) printf "%.2f", b / 1048576 / (ms / 1000) }' ;;
	*)
		awk -v n="$(f "$2"_files)" -v ms="$(f "$2"_ms)" -v want="$files" \
			'BEGIN { if (n == want && ms > 0) printf "%.0f", n / (ms / 1000) }' ;;
	esac
}
figs() {
	grep -a "^BENCH-RESULT vmm=$1 " <<<"$out" | while read -r line; do
		fig1 "$line" "$2"
		echo
	done | grep . | sort -g
}
fig() {
	figs "$1" "$2" | median
}

status=0
printf '\n%-12s %22s %22s %22s %22s\n' "" "read (MiB/s)" "write+fsync (MiB/s)" "create (files/s)" "stat (files/s)"
for vmm in $vmms; do
	printf '%-12s' "$vmm"
	for w in READ WRITE CREATE STAT; do
		v=$(fig "$vmm" $w)
		q=$(fig qemu $w)
		if [ -z "$v" ]; then
			status=1
			printf ' %22s' "-"
		elif [ "$vmm" = qemu ] || [ -z "$q" ]; then
			printf ' %22s' "$v"
		else
			printf ' %22s' "$v [$(awk -v a="$v" -v b="$q" 'BEGIN { printf "%.2f", a / b }')]"
		fi
	done
	printf '\n'
done
if [ "$rounds" -gt 1 ]; then
	printf '\nrange over the rounds (lowest-highest):\n'
	for vmm in $vmms; do
		printf '%-12s' "$vmm"
		for w in READ WRITE CREATE STAT; do
			printf ' %22s' "$(figs "$vmm" $w | sed -n '1p;$p' | paste -sd- -)"
		done
		printf '\n'
	done
fi
grep -a '^BENCH-NOTE' <<<"$out" | sed 's/^BENCH-NOTE /note: /'
echo "wall: ${wall} s; [ratio] is vivarium / QEMU (above 1: faster than QEMU)"
[ "$rig_status" = 0 ] || { echo "share: the rig failed (exit $rig_status)" >&2; exit 125; }
exit $status
