# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# tests/guest/lib.sh - sourced by the firmware-tier scripts that boot a
# medium in vivarium (or QEMU, the control) on this host's /dev/kvm and
# watch COM1 (test_firmware_boot.sh, test_compat_media.sh): the checks
# before a run, starting and stopping the VMM, and following the boot's
# stages in the serial log.  Defines functions only.
#
# The caller sets: vmm (vivarium|qemu), viv (the binary), work (its
# temporary folder), log (COM1's file), and defines clean_log (COM1 as
# text) and goal_reached (see watch_stages); it reads status, last_stage,
# stage_time, start and pid, which these functions set.
# shellcheck disable=SC2034,SC2154 # those variables are the caller's

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# require_vmm: $vmm is runnable (vivarium: $viv built; qemu: installed) and
# /dev/kvm is there for us; else fail or skip.
require_vmm() {
	case $vmm in
	vivarium) [ -n "$viv" ] && [ -x "$viv" ] || fail "vivarium binary '$viv' does not exist (build it first)" ;;
	qemu) command -v qemu-system-x86_64 >/dev/null ||
		skip "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" ;;
	*) fail "VIVARIUM_E2E_VMM must be vivarium or qemu, not '$vmm'" ;;
	esac
	[ -c /dev/kvm ] || skip "no /dev/kvm on this host"
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not read-writable by $(id -un)"
}

# vmm_start CMD...: run the VMM in the background (stdin closed, its output
# in $work/vmm.out); sets pid and start (for elapsed).
vmm_start() {
	start=$(date +%s.%N)
	"$@" </dev/null >"$work/vmm.out" 2>&1 &
	pid=$!
}

# vmm_cleanup: the trap on EXIT: stop the VMM (TERM, then KILL after 5 s)
# if it still runs, remove $work.
vmm_cleanup() {
	if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$work"
}

# elapsed: seconds since vmm_start, one decimal.
elapsed() {
	awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'
}

# vmm_stopped: the caller may redefine it: true when the VMM is stopped for
# good though its process lives on (status then says how).
vmm_stopped() { return 1; }

# watch_stages -F|-E TIMEOUT: follow the boot on COM1 every 0.5 s.  Each of
# stages[] ("pattern|description", grep -F or -E patterns) is noted the
# first time clean_log shows it: stage_time[pattern], last_stage and a
# "# T s: description" line.  Stops when goal_reached (the caller's; text
# holds COM1) succeeds (setting status), the VMM exits (status "exited N"),
# vmm_stopped succeeds, or TIMEOUT seconds have passed (status timeout).
watch_stages() {
	local how=$1 limit=$2 s pat

	declare -gA stage_time=()
	last_stage="nothing on COM1 yet"
	status=running
	while :; do
		text=$(clean_log)
		for s in "${stages[@]}"; do
			pat=${s%%|*}
			if [ -z "${stage_time[$pat]:-}" ] && grep -aq "$how" -- "$pat" <<<"$text"; then
				stage_time[$pat]=$(elapsed)
				last_stage="${s#*|} at ${stage_time[$pat]} s"
				echo "# ${stage_time[$pat]} s: ${s#*|}"
			fi
		done
		goal_reached && break
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			status="exited $?"
			break
		fi
		vmm_stopped && break
		if awk -v t="$limit" -v e="$(elapsed)" 'BEGIN { exit !(e >= t) }'; then
			status=timeout
			break
		fi
		sleep 0.5
	done
}

# check CONDITION DESCRIPTION: eval CONDITION; "ok - ..." or "not ok - ..."
# (counted in errors, which the caller sets to 0).
check() {
	if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); fi
}
