#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run.sh BUILD SECONDS NAME... - run libFuzzer targets one after another,
# each for SECONDS, continuing its corpus.
#
# BUILD is a clang build (CC=clang meson setup BUILD; see README.md) with
# tests/fuzz/fuzz_NAME and fuzz_NAME_run built.  For each NAME the corpus is
# $FUZZ_CORPUS/NAME (default /work/fuzz-corpus; made from the target's seeds
# the first time), the log $FUZZ_CORPUS/logs/NAME-<date>.log (libFuzzer's
# final stats at its end), and a crash lands in $FUZZ_CORPUS/crashes/.
# Runs under nice -n 19.  Do not run it beside the rig's tests: even at
# nice 19 the fuzzer's CPU slows the rig's emulated L1 enough to fail them.
# Do not SIGSTOP it either: libFuzzer's -timeout counts wall time.
#
# Exit: 0 when every target ran without a find, 1 otherwise.

set -u
[ $# -ge 3 ] || { echo "usage: run.sh BUILD SECONDS NAME..." >&2; exit 2; }
build=$1 secs=$2
shift 2
root=${FUZZ_CORPUS:-/work/fuzz-corpus}
mkdir -p "$root/logs" "$root/crashes" || exit 2
status=0
for name in "$@"; do
	fz=$build/tests/fuzz/fuzz_$name
	[ -x "$fz" ] && [ -x "${fz}_run" ] || {
		echo "run.sh: $fz or ${fz}_run is not built (ninja -C $build tests/fuzz/fuzz_$name tests/fuzz/fuzz_${name}_run)" >&2
		status=1
		continue
	}
	corpus=$root/$name
	if [ ! -d "$corpus" ]; then
		mkdir -p "$corpus" && "${fz}_run" --write-seeds "$corpus" >/dev/null || status=1
	fi
	log=$root/logs/$name-$(date +%Y%m%d-%H%M).log
	echo "run.sh: $name for ${secs}s, corpus $corpus, log $log"
	nice -n 19 "$fz" "$corpus" -max_total_time="$secs" -timeout=25 -print_final_stats=1 \
		-artifact_prefix="$root/crashes/$name-" >"$log" 2>&1 || status=1
	tail -n 12 "$log" | grep -E '^(stat::|Done|==|SUMMARY)' | sed "s/^/run.sh: $name: /"
done
exit $status
