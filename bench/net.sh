#!/bin/bash
# SPDX-License-Identifier: MIT
#
# net.sh - a Linux guest's network throughput and ping time, through NAT and
# through a TAP device, vivarium against QEMU.
#
# Usage:
#   bench/net.sh [--vivarium PATH] [--exits] [--iofd LIST] [--rounds N]
#                [--mib N] [--pings N] [--timeout SEC]
#
# In ONE run of the nested rig (tests/rig/rig.sh, with tun and bridge loaded
# in L1) it boots the same guest - the Debian kernel from /boot and the
# initramfs of tests/rig/mkguest-initramfs.sh --net, 2 vCPUs, 512 MiB,
# virtio-net - four times:
#   qemu     nat  -netdev user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80
#                 -device virtio-net-pci,netdev=n0
#   qemu     tap  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no
#                 -device virtio-net-pci,netdev=n0
#   vivarium nat  --nic virtio,nat,hostfwd=tcp:127.0.0.1:8080-:80
#   vivarium tap  --nic virtio,tap,ifname=tap0
# (vivarium when PATH, default build/app/vivarium, is built and its `run
# --help` mentions --nic; otherwise "vivarium: not available").  --exits
# adds two boots of the same vivarium with VIVARIUM_IOFD=off ("viv-exits":
# every virtio notify an MMIO exit, every MSI a KVM_SIGNAL_MSI, as before
# ioeventfd and irqfd), so the doorbells' effect is measured in one run,
# and two of QEMU with virtio-net-pci,ioeventfd=off ("qemu-exits": its
# notifies exit, its MSIs keep their irqfds), how the same change moves
# the peer here; --iofd LIST adds, for each of on, off, ioeventfd, irqfd,
# vivarium with VIVARIUM_IOFD set so ("viv-on", "viv-exits",
# "viv-ioeventfd", "viv-irqfd": both doorbells, neither, or only that
# one).  NAT: the
# guest is 10.0.2.15 (DHCP), L1 is 10.0.2.2.  TAP: tap0 is in a bridge br0
# at 192.168.77.1/24 in L1; the guest takes 192.168.77.2.  Each boot measures
#   host->guest  the guest's busybox wget of N MiB (zeros) from busybox
#                httpd in L1 (127.0.0.1:8000 behind NAT, 192.168.77.1:8000
#                on TAP), bytes counted by `wc -c`, timed by the guest's
#                /proc/uptime from before wget starts to after the last byte
#   guest->host  L1's busybox wget of N MiB (zeros, in the guest's RAM)
#                from the guest's httpd (through the host forward 8080 ->
#                :80 behind NAT; 192.168.77.2:80 on TAP), counted the same
#                way, timed by L1's /proc/uptime
#   ping         the guest's `ping -c N` of the gateway: 10.0.2.2 behind NAT
#                (libslirp answers echo requests to its own addresses
#                itself: this is guest <-> the VMM's slirp, not L1's stack),
#                192.168.77.1 on TAP (guest <-> L1's kernel); min/avg/max
# Both are TCP (HTTP/1.0 through busybox's httpd and wget), one connection.
# Everything runs under TCG, L1 and L2 alike: compare figures of one run
# only.  --rounds N (default 1) boots every VMM N times, taking turns, so
# that the machine's load swings fall on all of them; each figure is then
# the median of its rounds, and their range is printed below.  Each figure
# has its ratio to QEMU's in brackets (above 1: more bytes per second, or
# pings that take longer).
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
pings=10
timeout_s=900
variants=
rounds=1

while [ $# -gt 0 ]; do
	case $1 in
	--vivarium) viv=$2; shift 2 ;;
	--exits) variants="$variants off qoff"; shift ;;
	--iofd) variants="$variants $(echo "$2" | tr , ' ')"; shift 2 ;;
	--mib) mib=$2; shift 2 ;;
	--pings) pings=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	-h|--help) sed -n '/^# Usage:/,/^# Exit:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "net: unknown option '$1'" >&2; exit 2 ;;
	esac
done
case $mib in ''|*[!0-9]*) echo "net: --mib wants a number" >&2; exit 2 ;; esac
case $pings in ''|*[!0-9]*) echo "net: --pings wants a number" >&2; exit 2 ;; esac
case $rounds in ''|0|*[!0-9]*) echo "net: --rounds wants a number from 1" >&2; exit 2 ;; esac

bench_setup net vivarium-bench-net
"$root/tests/rig/mkguest-initramfs.sh" --net "$work/guest.cpio.gz" || exit 125

vmms=qemu
viv_note=
rig_args=(--qemu --module tun --module bridge
	--file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz")
if [ ! -x "$viv" ]; then
	viv_note="not available ($viv is not built)"
elif ! "$viv" run --help 2>&1 | grep -q -- '--nic'; then
	viv_note="not available (no --nic)"
else
	rig_args+=(--bin "$viv:/bin/vivarium")
	vmms="qemu vivarium"
	for v in $variants; do
		case $v in
		off) vmms="$vmms viv-exits" ;;
		qoff) vmms="$vmms qemu-exits" ;;
		on|ioeventfd|irqfd) vmms="$vmms viv-$v" ;;
		*) echo "net: --iofd takes on, off, ioeventfd, irqfd" >&2; exit 2 ;;
		esac
		timeout_s=$((timeout_s + 600))
	done
fi
timeout_s=$((timeout_s * rounds))

# The script L1 runs: BENCH-RESULT lines, one per VMM and backend.
cat >"$work/bench.sh" <<EOF
vmms="$vmms"
mib=$mib
pings=$pings
rounds=$rounds
EOF
cat >>"$work/bench.sh" <<'EOF'
port=8000
append="console=ttyS0 quiet panic=-1"
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
ip link set lo up
mkdir -p /srv/www
dd if=/dev/zero of=/srv/www/zero.bin bs=1048576 count=$mib 2>/dev/null
httpd -p 127.0.0.1:$port -h /srv/www
tunctl -t tap0 >/dev/null && brctl addbr br0 && brctl addif br0 tap0 &&
	ip addr add 192.168.77.1/24 dev br0 && ip link set tap0 up && ip link set br0 up ||
	echo "BENCH-NOTE all: could not set up tap0 and br0"
httpd -p 192.168.77.1:$port -h /srv/www

round=0
while [ $round -lt $rounds ]; do
round=$((round + 1))
for vmm in $vmms; do
	for net in nat tap; do
		if [ $net = nat ]; then
			peer=10.0.2.2 guest=127.0.0.1:8080 guestargs=
			qnic="-netdev user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80"
			vnic="--nic virtio,nat,hostfwd=tcp:127.0.0.1:8080-:80"
		else
			peer=192.168.77.1 guest=192.168.77.2 guestargs="vivnet.ip=192.168.77.2/24"
			qnic="-netdev tap,id=n0,ifname=tap0,script=no,downscript=no"
			vnic="--nic virtio,tap,ifname=tap0"
		fi
		args="$append $guestargs vivnet.serve=$mib vivnet.ping=$peer vivnet.pingcount=$pings vivnet.sink=http://$peer:$port/zero.bin"
		if [ $vmm = qemu ] || [ $vmm = qemu-exits ]; then
			qdev="-device virtio-net-pci,netdev=n0"
			[ $vmm = qemu-exits ] && qdev="$qdev,ioeventfd=off"
			set -- qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split -m 512M -smp 2 \
				-display none -monitor none -no-reboot -serial file:/tmp/serial.log \
				-kernel /guest/vmlinuz -initrd /guest/initrd.cpio.gz $qnic $qdev -append "$args"
		else
			# viv-exits: the same vivarium without its eventfd
			# doorbells; viv-V: with VIVARIUM_IOFD=V.
			case $vmm in
			viv-exits) envs=VIVARIUM_IOFD=off ;;
			viv-*) envs=VIVARIUM_IOFD=${vmm#viv-} ;;
			*) envs= ;;
			esac
			set -- env $envs vivarium run --cpus 2 --memory 512M --display none --serial file:/tmp/serial.log \
				--kernel /guest/vmlinuz --initrd /guest/initrd.cpio.gz $vnic --append "$args"
		fi
		echo "=== $vmm $net (round $round): $*"
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
		up=
		if [ $state = ok ]; then
			t1=$(ms)
			bytes=$(timeout 300 wget -q -O - http://$guest/big | wc -c)
			t=$(($(ms) - t1))
			up="up_bytes=$bytes up_ms=$t"
		fi
		kill $vpid 2>/dev/null
		wait $vpid 2>/dev/null
		log=$(tr -d '\r' </tmp/serial.log)
		sink=$(echo "$log" | grep '^GUEST-SINK=' | tail -n1)
		ping=$(echo "$log" | grep '^GUEST-PING=' | tail -n1)
		field() { echo "$2" | grep -o " $1=[^ ]*" | cut -d= -f2; }
		echo "BENCH-RESULT vmm=$vmm net=$net round=$round state=$state down=${sink%% *} down_bytes=$(field bytes "$sink") down_ms=$(field ms "$sink") $up ping=${ping%% *} rtt=$(field rtt "$ping")"
		if [ $state != ok ] || [ "${sink%% *}" != GUEST-SINK=ok ]; then
			{ tr -d '\r' </tmp/vmm.out; echo "$log"; } | grep . | tail -n 5 | sed "s/^/BENCH-NOTE $vmm $net: /"
		fi
	done
done
done
EOF

echo "net: one rig run, VMMs: $vmms, $rounds round(s); $mib MiB each way, $pings pings (guest: $kernel, 2 vCPUs, 512 MiB, virtio-net)" >&2
rig_bench
# fig1 LINE WHAT: one figure of one BENCH-RESULT line (MiB/s, or the
# average rtt in ms); nothing if that measurement failed.
fig1() {
	local line=$1
	f() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	case $2 in
	down|up)
		[ "$2" = up ] || [ "$(f down)" = GUEST-SINK=ok ] || return
		awk -v b="$(f "$2"_bytes)" -v ms="$(f "$2"_ms)" -v want=$((mib * 1048576)) \
			'BEGIN { if (b == want && ms > 0) printf "%.2f", b / 1048576 / (ms / 1000) }' ;;
	rtt) f rtt | cut -d/ -f2 ;;
	rtts) f rtt ;;
	esac
}
# figs VMM NET WHAT: that figure of each of the VMM's rounds (sorted, but
# for rtts: min/avg/max strings in round order).
figs() {
	grep -a "^BENCH-RESULT vmm=$1 net=$2 " <<<"$out" | while read -r line; do
		fig1 "$line" "$3"
		echo
	done | grep . | if [ "$3" = rtts ]; then cat; else sort -g; fi
}
# fig VMM NET WHAT: the median over the rounds (nothing if none succeeded).
fig() {
	local fmt=%.2f

	[ "$3" = rtt ] && fmt=%.3f
	figs "$1" "$2" "$3" | median "$fmt"
}

echo
echo "Network in the nested rig (L1/L2 times; TCG: compare within one run only)"
echo "virtio-net, $mib MiB each way over one TCP connection (busybox wget/httpd), $pings pings;"
echo "$rounds round(s), medians; whole rig run: $wall s wall"
echo "(in brackets: the ratio to QEMU's figure in the same run)"
echo
hdr=$(printf '%-32s' "")
for vmm in $vmms; do
	hdr="$hdr$(printf '%16s' "$vmm")"
done
[ -n "$viv_note" ] && hdr="$hdr$(printf '%16s' vivarium)"
echo "$hdr"
ok=1
for net in nat tap; do
	case $net in nat) peer=10.0.2.2 ;; tap) peer=192.168.77.1 ;; esac
	for what in down up rtt; do
		case $what in
		down) label="$net host->guest (MiB/s)" ;;
		up) label="$net guest->host (MiB/s)" ;;
		rtt) label="$net ping $peer avg (ms)" ;;
		esac
		q=$(fig qemu $net $what)
		row=$(printf '%-32s' "$label")
		for vmm in $vmms; do
			v=$(fig "$vmm" $net $what)
			[ -n "$v" ] || ok=0
			r=
			[ "$vmm" = qemu ] || [ -z "$v" ] || r=$(ratio "$v" "$q")
			row="$row$(printf '%16s' "${v:--}${r:+ [$r]}")"
		done
		[ -n "$viv_note" ] && row="$row$(printf '%16s' -)"
		echo "$row"
	done
done
if [ "$rounds" -gt 1 ]; then
	echo
	echo "range over the rounds (lowest-highest):"
	for net in nat tap; do
		for what in down up rtt; do
			row=$(printf '%-32s' "$net $what")
			for vmm in $vmms; do
				row="$row$(printf '%16s' "$(figs "$vmm" $net $what | range)")"
			done
			echo "$row"
		done
	done
fi
echo
for vmm in $vmms; do
	for net in nat tap; do
		echo "# $vmm $net ping min/avg/max: $(figs "$vmm" $net rtts | tr '\n' ' ')ms"
	done
done
[ -z "$viv_note" ] || echo "vivarium: $viv_note"
grep -a '^BENCH-NOTE' <<<"$out" | awk '!seen[$0]++'
if [ "$rig_status" != 0 ]; then
	echo "net: the rig ended with status $rig_status" >&2
	[ "$rig_status" = 125 ] && exit 125
	exit 1
fi
[ "$ok" = 1 ] || exit 1
exit 0
