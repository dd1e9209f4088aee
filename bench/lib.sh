# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# bench/lib.sh - sourced by the benchmarks for what they would otherwise
# each write again: the guest kernel and a scratch folder, one run of the
# nested rig with its console and wall time (boot_time.sh, disk.sh,
# net.sh, share.sh; after tests/rig/lib.sh), figures over rounds (median,
# ratio, range), and a private Xvfb (display_latency.sh, pointer.sh).
# Defines functions only.
# shellcheck disable=SC2034,SC2154 # the variables are the caller's

# bench_setup NAME PREFIX: kernel, the newest /boot/vmlinuz-* (exit 125
# with a line from NAME if there is none), and work, a scratch folder
# ${TMPDIR:-/tmp}/PREFIX.XXXXXX removed on exit.
bench_setup() {
	kernel=$(newest_kernel)
	[ -n "$kernel" ] || { echo "$1: no /boot/vmlinuz-* (apt-get install linux-image-amd64)" >&2; exit 125; }
	work=$(mktemp -d "${TMPDIR:-/tmp}/$2.XXXXXX")
	trap 'rm -rf "$work"' EXIT
}

# rig_bench: one run of the rig ($rig --timeout $timeout_s "${rig_args[@]}")
# running $work/bench.sh (as /rig/bench.sh), its console shown and kept in
# $work/console.  Sets rig_status (the rig's exit status), wall (its
# seconds, one decimal) and out (the console without carriage returns).
rig_bench() {
	start=$(date +%s.%N)
	"$rig" --timeout "$timeout_s" "${rig_args[@]}" --file "$work/bench.sh:/rig/bench.sh" \
		-- 'sh /rig/bench.sh' </dev/null 2>&1 | tee "$work/console"
	rig_status=${PIPESTATUS[0]}
	wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	out=$(tr -d '\r' <"$work/console")
}

# median [FMT]: the median of the sorted numbers on stdin, one a line,
# printed with printf FMT (without: as awk prints it); nothing for none.
median() {
	if [ $# -gt 0 ]; then
		awk -v fmt="$1" '{ v[NR] = $1 }
			END { if (NR) printf fmt "\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
	else
		awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
	fi
}

# ratio A B: A / B with two decimals, "-" unless both are above 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }

# range: "FIRST-LAST" of the lines on stdin (sorted figures: lowest-highest).
range() { sed -n '1h; $!d; x; G; s/\n/-/p'; }

# with_xvfb TMPNAME CMD...: run CMD on a private Xvfb display (1280x1024,
# 24 bits, no TCP) that Xvfb numbers itself; stopped, and its scratch
# folder /tmp/TMPNAME.XXXXXX removed, on exit.  Returns CMD's status; the
# caller's die() if Xvfb does not start.
with_xvfb() {
	local name=$1
	shift
	# Xvfb picks a free display number itself and writes it to fd 3 once it
	# accepts connections (-displayfd): no race with other X servers.
	tmp=$(mktemp -d "/tmp/$name.XXXXXX") || die "cannot make a temporary directory"
	xvfb_pid=
	trap xvfb_cleanup EXIT
	Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp 3>"$tmp/display" \
		2>"$tmp/xvfb.log" &
	xvfb_pid=$!
	for _ in $(seq 100); do
		[ -s "$tmp/display" ] && break
		kill -0 "$xvfb_pid" 2>/dev/null || break
		sleep 0.1
	done
	num=$(tr -dc 0-9 <"$tmp/display")
	if [ -z "$num" ]; then
		cat "$tmp/xvfb.log" >&2
		die "Xvfb did not start"
	fi
	DISPLAY=:$num "$@"
}

xvfb_cleanup() {
	if [ -n "$xvfb_pid" ]; then
		kill "$xvfb_pid" 2>/dev/null
		wait "$xvfb_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
