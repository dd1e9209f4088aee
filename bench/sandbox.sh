#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/sandbox.sh - what the VM process's sandbox costs: the same guests
# with `--sandbox off` and `--sandbox on`, taking turns, in one run, on
# this host's /dev/kvm (no rig).
#
#   bench/sandbox.sh [--vivarium PATH] [--syscall-bench PATH] [--rounds N]
#                    [--fw-rounds N]
#                    [--exits N] [--sectors N] [--no-firmware]
#
# Rows (medians of the rounds; the ratio is on / off: above 1 for a time
# means the sandbox costs, below 1 for the disk's MiB/s):
#   start     `vivarium run` of a guest that powers off at once
#             (bench/ioguest with nothing to do): process start, the
#             sandbox's set-up (filters built, every thread asked, Landlock),
#             the machine's build and teardown
#   exits     the same guest making --exits port writes (COM1's scratch
#             register), less `start`, per exit: a KVM_RUN round trip with
#             the vCPU's two filters on every ioctl
#   disk      the guest reading --sectors sectors from an IDE disk (raw, 512
#             bytes each, 16 a command, polled PIO) less `start`, as MiB/s:
#             the vCPU's exits, the block workers' preads under their filters
#   firmware  SeaBIOS and GRUB from an ATAPI CD-ROM to GRUB's menu on COM1
#             (tests/images' grub-iso, time to the first menu entry)
#   ioctl,    one system call on a thread without filters and on one with a
#   read      vCPU's two: ioctl(-1, KVM_RUN), read(-1) (build/bench/
#             sandbox_syscall, no KVM): what the filters alone add
#
# Exit: 0, or 1 when a run failed (its output is shown).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$here/..
viv=$top/build/app/vivarium
syscall_bench=$top/build/bench/sandbox_syscall
rounds=5
fw_rounds=2
exits=200000
sectors=16384
firmware=1

while [ $# -gt 0 ]; do
	case $1 in
	--vivarium) viv=$2; shift 2 ;;
	--syscall-bench) syscall_bench=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--fw-rounds) fw_rounds=$2; shift 2 ;;
	--exits) exits=$2; shift 2 ;;
	--sectors) sectors=$2; shift 2 ;;
	--no-firmware) firmware=0; shift ;;
	-h|--help) sed -n '3,/^# Exit/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/sandbox.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ -x "$viv" ] || { echo "bench/sandbox.sh: no vivarium at $viv (build it first)" >&2; exit 1; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "bench/sandbox.sh: no usable /dev/kvm" >&2; exit 1; }
[ $((sectors % 16)) -eq 0 ] || { echo "bench/sandbox.sh: --sectors must be a multiple of 16" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-bench-sandbox.XXXXXX")
trap 'rm -rf "$work"' EXIT
mk=$top/tests/e2e/mktinyguest.sh
src=$here/ioguest/io.S
"$mk" "$work/idle.bz" "$src" || exit 1
"$mk" "$work/exits.bz" "$src" -DEXITS="$exits" || exit 1
"$mk" "$work/disk.bz" "$src" -DSECTORS="$sectors" || exit 1
head -c $((sectors * 512)) /dev/urandom >"$work/disk.img"
failed=0

now_ns() { date +%s%N; }

# run KERNEL MODE [--disk]: one `vivarium run` to the guest's power-off;
# prints its wall time in ms.
run() {
	local kernel=$1 mode=$2 t0 t1 rc
	shift 2
	t0=$(now_ns)
	timeout -k 5 300 "$viv" run --kernel "$kernel" --memory 64M --sandbox "$mode" \
		--serial "file:$work/serial.log" "$@" </dev/null >"$work/out" 2>&1
	rc=$?
	t1=$(now_ns)
	if [ "$rc" -ne 0 ] || ! grep -q "IO-GUEST: done" "$work/serial.log"; then
		echo "# run failed (sandbox $mode, status $rc): $(cat "$work/out" "$work/serial.log" | tail -n 3)" >&2
		failed=1
	fi
	echo $(((t1 - t0) / 1000000))
}

# fw MODE: SeaBIOS + GRUB from the CD-ROM to the menu; ms.
fw() {
	local mode=$1 t0 t1 pid i
	: >"$work/fw.log"
	t0=$(now_ns)
	"$viv" run --firmware bios --memory 128M --cdrom "$work/grub.iso" --boot cdrom \
		--sandbox "$mode" --serial "file:$work/fw.log" --display none \
		</dev/null >"$work/fw.out" 2>&1 &
	pid=$!
	for ((i = 0; i < 30000; i++)); do
		grep -aq "$GRUB_MENU_ENTRY_A" "$work/fw.log" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	t1=$(now_ns)
	if ! grep -aq "$GRUB_MENU_ENTRY_A" "$work/fw.log"; then
		echo "# firmware boot failed (sandbox $mode): $(tail -n 3 "$work/fw.out")" >&2
		failed=1
	fi
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	echo $(((t1 - t0) / 1000000))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A t=()
for ((r = 1; r <= rounds; r++)); do
	# Taking turns, the first mode alternating, so drift hits both.
	if [ $((r % 2)) -eq 1 ]; then order="off on"; else order="on off"; fi
	for m in $order; do
		t[start-$m]+="$(run "$work/idle.bz" "$m") "
		t[exits-$m]+="$(run "$work/exits.bz" "$m") "
		t[disk-$m]+="$(run "$work/disk.bz" "$m" --disk "$work/disk.img,format=raw,if=ata") "
	done
done
if [ "$firmware" = 1 ]; then
	# shellcheck source=tests/images/lib.sh
	. "$top/tests/images/lib.sh"
	if iso=$("$top/tests/images/get-image.sh" grub-iso 2>/dev/null); then
		cp "$iso" "$work/grub.iso"
		for ((r = 1; r <= fw_rounds; r++)); do
			if [ $((r % 2)) -eq 1 ]; then order="off on"; else order="on off"; fi
			for m in $order; do
				t[fw-$m]+="$(fw "$m") "
			done
		done
	else
		echo "# no grub-iso image (tests/images/get-image.sh): firmware row skipped" >&2
		firmware=0
	fi
fi

med() { tr ' ' '\n' <<<"${t[$1]}" | grep . | median; }
so=$(med start-off) son=$(med start-on)
eo=$(med exits-off) eon=$(med exits-on)
do_=$(med disk-off) don=$(med disk-on)

echo "sandbox off/on, $rounds rounds each (firmware: $fw_rounds), medians; $(nproc) CPUs, $(uname -r)"
printf '%-10s %14s %14s %8s\n' row off on on/off
awk -v o="$so" -v n="$son" 'BEGIN { printf "%-10s %11.0f ms %11.0f ms %8.3f\n", "start", o, n, n / o }'
awk -v o="$eo" -v n="$eon" -v so="$so" -v sn="$son" -v e="$exits" 'BEGIN {
	a = (o - so) * 1000 / e; b = (n - sn) * 1000 / e
	printf "%-10s %11.2f us %11.2f us %8.3f\n", "exits", a, b, b / a }'
awk -v o="$do_" -v n="$don" -v so="$so" -v sn="$son" -v s="$sectors" 'BEGIN {
	mib = s * 512 / 1048576; a = mib / ((o - so) / 1000); b = mib / ((n - sn) / 1000)
	printf "%-10s %9.1f MiB/s %9.1f MiB/s %8.3f\n", "disk", a, b, b / a }'
if [ -x "$syscall_bench" ]; then
	"$syscall_bench" >"$work/syscall.out" || failed=1
	while read -r call off on; do
		awk -v c="$call" -v o="$off" -v n="$on" 'BEGIN { printf "%-10s %11.1f ns %11.1f ns %8.3f\n", c, o, n, n / o }'
	done <"$work/syscall.out"
fi
if [ "$firmware" = 1 ]; then
	fo=$(med fw-off) fon=$(med fw-on)
	awk -v o="$fo" -v n="$fon" 'BEGIN { printf "%-10s %11.0f ms %11.0f ms %8.3f\n", "firmware", o, n, n / o }'
fi
echo "# all runs (ms): $(for k in "${!t[@]}"; do printf '%s: %s; ' "$k" "${t[$k]}"; done)"
exit $failed
