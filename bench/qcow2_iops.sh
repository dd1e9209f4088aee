#!/bin/bash
# SPDX-License-Identifier: MIT
#
# qcow2_iops.sh - the block layer on qcow2 against QEMU's, on the same file
# in the same run: 4 KiB random read and write IOPS and 64 KiB sequential
# write throughput at queue depth 32.  See bench/README.md for what is
# measured and the caveats.
#
#   bench/qcow2_iops.sh [--build DIR] [--dir DIR] [--size SIZE] [--runs N]
#                       [--read-count N] [--write-count N] [--seq-count N]
#                       [--direct]
#
# Rows come from bench/blk_bench (vivarium's blk_submit, 4 worker threads,
# page cache) and `qemu-img bench -t writeback -i threads` (QEMU's thread
# pool, page cache); --direct adds `qemu-img bench -t none -i native`
# (O_DIRECT + Linux AIO) as a reference for what the disk itself does.
# Each figure is the median of --runs runs (default 3), the tools taking
# turns.  Exit: 0, 1 when a tool failed or the image did not check clean.

set -u

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
dir=
size=1G
runs=3
read_count=200000
write_count=100000
seq_count=16384
direct=0

die() { echo "qcow2_iops.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift ;;
	--dir) dir=$2; shift ;;
	--size) size=$2; shift ;;
	--runs) runs=$2; shift ;;
	--read-count) read_count=$2; shift ;;
	--write-count) write_count=$2; shift ;;
	--seq-count) seq_count=$2; shift ;;
	--direct) direct=1 ;;
	-h|--help) sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done

viv=$build/app/vivarium
bench=$build/bench/blk_bench
[ -x "$viv" ] && [ -x "$bench" ] || die "build first: no $viv or $bench (ninja -C $build)"
for p in qemu-img qemu-io python3; do
	command -v $p >/dev/null || die "$p is missing (apt-get install qemu-utils python3)"
done

# On disk, not tmpfs: the same file system as the project by default.
if [ -z "$dir" ]; then
	dir=$(mktemp -d /var/tmp/vivarium-bench.XXXXXX) || die "cannot make a directory in /var/tmp"
	trap 'rm -rf "$dir"' EXIT
else
	mkdir -p "$dir" || die "cannot make $dir"
	trap 'rm -f "$dir/bench.qcow2" "$dir/results" "$dir/check"' EXIT
fi
img=$dir/bench.qcow2
rm -f "$img"

# A 4 KiB step that is prime and so coprime to the number of 4 KiB blocks
# in a power-of-two disk (minus one): the "random" offsets visit every
# block before repeating, the same ones for both tools.
rand_step=$((40009 * 4096))

echo "# file system: $(stat -f -c %T "$dir") ($dir); $(nproc) CPUs; $(qemu-img --version | head -1)"
echo "# image: vivarium img create -f qcow2 $size, every cluster written (qemu-io)"
"$viv" img create -q -f qcow2 "$img" "$size" || die "img create failed"
bytes=$(qemu-img info --output json "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
qemu-io -f qcow2 -c "write -P 0x5a 0 $bytes" "$img" >/dev/null || die "filling the image failed"
sync

# run TOOL TEST: prints the seconds one run took.
run() {
	local tool=$1 test=$2 args out
	case $test in
	randread) args="-c $read_count -d 32 -s 4k -S $rand_step" ;;
	randwrite) args="-c $write_count -d 32 -s 4k -S $rand_step -w --pattern=165" ;;
	seqwrite) args="-c $seq_count -d 32 -s 64k -w --pattern=90" ;;
	esac
	case $tool in
	vivarium) out=$("$bench" -f qcow2 $args "$img" 2>&1) ;;
	qemu) out=$(qemu-img bench -f qcow2 -t writeback -i threads $args "$img" 2>&1) ;;
	qemu-direct) out=$(qemu-img bench -f qcow2 -t none -i native $args "$img" 2>&1) ;;
	esac
	echo "$out" | sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p' | grep . ||
		{ echo "qcow2_iops.sh: $tool $test failed: $out" >&2; echo FAIL; }
}

results=$dir/results
: >"$results"
# run_all TOOLS...: every test --runs times, the tools taking turns.
run_all() {
	local r test tool
	for r in $(seq 1 "$runs"); do
		for test in randread randwrite seqwrite; do
			for tool in "$@"; do
				echo "$tool $test $(run $tool $test)" >>"$results"
			done
		done
	done
}
tools="vivarium qemu"
run_all $tools
# O_DIRECT writes drop the file's pages from the page cache: only after
# the page-cache rows, or their reads would go to the disk.
if [ $direct = 1 ]; then
	tools="$tools qemu-direct"
	run_all qemu-direct
fi

ok=1
grep -q FAIL "$results" && ok=0
if qemu-img check "$img" >"$dir/check" 2>&1; then
	echo "# qemu-img check after the runs: clean"
else
	echo "# qemu-img check after the runs: NOT CLEAN"; cat "$dir/check"; ok=0
fi

python3 - "$results" "$tools" "$read_count" "$write_count" "$seq_count" "$runs" <<'PY'
import statistics, sys
path, tools, rc, wc, sc, runs = sys.argv[1], sys.argv[2].split(), *map(int, sys.argv[3:])
times = {}
for line in open(path):
    tool, test, t = line.split()
    if t != "FAIL":
        times.setdefault((tool, test), []).append(float(t))
rows = [("4 KiB random read, QD32", "randread", rc, 4096, "IOPS"),
        ("4 KiB random write, QD32", "randwrite", wc, 4096, "IOPS"),
        ("64 KiB sequential write, QD32", "seqwrite", sc, 65536, "MiB/s")]
names = {"vivarium": "vivarium blk_bench", "qemu": "qemu-img writeback",
         "qemu-direct": "qemu-img O_DIRECT"}
print(f"{'':32}" + "".join(f"{names[t]:>22}" for t in tools) + f"{'viv/qemu':>10}")
for label, test, count, size, unit in rows:
    cells, spread, vals = [], [], {}
    rate = lambda sec: count / sec if unit == "IOPS" else count * size / sec / 2**20
    for t in tools:
        ts = times.get((t, test))
        if not ts:
            cells.append(f"{'failed':>22}")
            spread.append(f"{'':>22}")
            continue
        vals[t] = rate(statistics.median(ts))
        cells.append(f"{vals[t]:>17,.0f} {unit:<4}")
        lo, hi = rate(max(ts)), rate(min(ts))
        spread.append(f"{f'{lo:,.0f}-{hi:,.0f}':>17}     ")
    ratio = (f"{vals['vivarium'] / vals['qemu']:>10.2f}"
             if "vivarium" in vals and "qemu" in vals else f"{'-':>10}")
    print(f"{label:32}" + "".join(cells) + ratio)
    print(f"{'  (slowest-fastest run)':32}" + "".join(spread))
print(f"# median of {runs} runs; requests per run: {rc} / {wc} / {sc}")
PY
[ $ok = 1 ]
