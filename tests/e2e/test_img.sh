#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_img.sh VIVARIUM - `vivarium img create|info|check|convert` against
# qemu-img, the independent oracle for image files:
#   - images vivarium creates (raw, qcow2 v3/v2, cluster sizes 4K..2M, with a
#     backing file) pass `qemu-img check`, still do after qemu-io writes to
#     them, and `qemu-img info --output json` agrees on size, format, backing;
#   - `vivarium img info` (human and JSON) on images qemu-img made prints
#     what `qemu-img info` prints;
#   - `vivarium img check` on clean, leaking and corrupted qcow2 files prints
#     qemu-img check's report and exits as it does (0, 3, 2);
#   - convert raw -> qcow2 -> raw keeps the content (`qemu-img compare`) and
#     stays sparse; a backing chain converts to a standalone image equal to
#     (and as allocated as) `qemu-img convert`'s;
#   - bad input gives one line on stderr, a non-zero exit, and no file made
#     or changed.
#
# Fast (a few seconds, small images): suite 'unit'.
# Exit: 0 pass, 1 fail, 77 skip (no qemu-img / qemu-io / python3).

set -u

viv=${1:-}
skip() { echo "SKIP: $*"; exit 77; }

[ -n "$viv" ] && [ -x "$viv" ] || { echo "FAIL: vivarium binary '$viv' missing"; exit 1; }
viv=$(realpath "$viv")
for p in qemu-img qemu-io python3; do
	command -v $p >/dev/null || skip "$p is not installed (apt-get install qemu-utils python3)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-img.XXXXXX")
mnt=
cleanup() {
	[ -n "$mnt" ] && umount "$mnt" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
# Images in img/, the test's own scratch files ($work/out...) outside it.
mkdir "$work/img" && cd "$work/img" || exit 1

failures=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# expect DESC CMD...: CMD succeeds.
expect() {
	local desc=$1; shift
	if "$@" >"$work/out" 2>"$work/err"; then pass "$desc"
	else fail "$desc (exit $?): $(head -c 600 "$work/err")"; fi
}

# jget FILE PATH.TO.KEY: a value from a JSON file ("None" if absent).
jget() {
	python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    d = d.get(k) if isinstance(d, dict) else None
print(d)' "$1" "$2"
}

# same_info A.json B.json: the keys both tools print agree (all of qemu-img's
# keys that vivarium prints must be there and equal).
same_info() {
	python3 - "$1" "$2" <<'PY'
import json, sys
ours, theirs = (json.load(open(f)) for f in sys.argv[1:3])
keys = ["virtual-size", "filename", "format", "actual-size", "cluster-size",
        "backing-filename", "full-backing-filename",
        "backing-filename-format", "dirty-flag", "format-specific"]
bad = [f"{k}: ours {ours.get(k)!r} qemu-img {theirs.get(k)!r}"
       for k in keys if ours.get(k) != theirs.get(k)]
if bad:
    print("; ".join(bad))
    sys.exit(1)
PY
}

# ---- create: vivarium's images, judged by qemu-img -----------------------

# created NAME FORMAT SIZE BACKING BACKING_FMT CLUSTER COMPAT: qemu-img check
# is clean (qcow2) and qemu-img info says what we asked for.
created() {
	local name=$1 fmt=$2 size=$3 backing=$4 bfmt=$5 cluster=$6 compat=$7
	local j=$work/$name.qinfo.json rc
	if [ "$fmt" = qcow2 ]; then
		qemu-img check "$name" >"$work/out" 2>&1
		rc=$?
		[ $rc = 0 ] && pass "$name: qemu-img check clean" ||
			fail "$name: qemu-img check exit $rc: $(cat "$work/out")"
	fi
	qemu-img info --output json "$name" >"$j" 2>&1 || { fail "$name: qemu-img info: $(cat "$j")"; return; }
	local got
	got="$(jget "$j" format) $(jget "$j" virtual-size) $(jget "$j" backing-filename) $(jget "$j" backing-filename-format) $(jget "$j" cluster-size) $(jget "$j" format-specific.data.compat)"
	local want="$fmt $size $backing $bfmt $cluster $compat"
	[ "$got" = "$want" ] && pass "$name: qemu-img info: $got" ||
		fail "$name: qemu-img info says '$got', wanted '$want'"
}

expect "create raw 64M" "$viv" img create -f raw r.raw 64M
created r.raw raw 67108864 None None None None
expect "create qcow2 1G" "$viv" img create -f qcow2 q.qcow2 1G
created q.qcow2 qcow2 1073741824 None None 65536 1.1
expect "create qcow2 4K clusters" "$viv" img create -f qcow2 -o cluster_size=4k q4k.qcow2 100M
created q4k.qcow2 qcow2 104857600 None None 4096 1.1
expect "create qcow2 2M clusters, compat 0.10" "$viv" img create -f qcow2 -o cluster_size=2M,compat=0.10 q2m.qcow2 3G
created q2m.qcow2 qcow2 3221225472 None None 2097152 0.10
# A size that is not whole sectors rounds up, as with qemu-img.
expect "create qcow2 512-byte clusters, odd size" "$viv" img create -f qcow2 -o cluster_size=512 q512.qcow2 10000000
created q512.qcow2 qcow2 10000384 None None 512 1.1
expect "create qcow2 over raw backing, size from backing" "$viv" img create -f qcow2 -b r.raw -F raw ov.qcow2
created ov.qcow2 qcow2 67108864 r.raw raw 65536 1.1
expect "create qcow2 over qcow2 backing, larger" "$viv" img create -f qcow2 -b q4k.qcow2 -F qcow2 ov2.qcow2 200M
grep -q "Formatting 'ov2.qcow2', fmt=qcow2" "$work/out" && pass "create says Formatting" ||
	fail "create printed '$(cat "$work/out")'"
created ov2.qcow2 qcow2 209715200 q4k.qcow2 qcow2 65536 1.1

# qemu-io writes into our images, across L2 tables and refcount blocks;
# qemu-img check must stay clean and qemu-io must read back what it wrote.
for img in q.qcow2 q4k.qcow2 q512.qcow2 ov.qcow2 ov2.qcow2; do
	if qemu-io -f qcow2 -c 'write -P 0xa5 0 1M' -c 'write -P 0x5a 5M 300k' \
		-c 'read -P 0xa5 0 1M' -c 'read -P 0x5a 5M 300k' "$img" >"$work/out" 2>&1 &&
		! grep -qi 'fail\|error' "$work/out"; then
		qemu-img check "$img" >"$work/out" 2>&1 && pass "$img: qemu-io writes, qemu-img check clean" ||
			fail "$img after qemu-io writes: $(cat "$work/out")"
	else
		fail "$img: qemu-io: $(cat "$work/out")"
	fi
done

# ---- info: qemu-img's images, vivarium's report ---------------------------

mkdir -p sub
qemu-img create -q -f raw qr.raw 10M
qemu-img create -q -f qcow2 qq.qcow2 5G
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4096 qv2.qcow2 1G
qemu-img create -q -f qcow2 -o cluster_size=2M qbig.qcow2 10G
qemu-img create -q -f qcow2 -b ../qq.qcow2 -F qcow2 sub/qov.qcow2
qemu-img create -q -f qcow2 -o lazy_refcounts=on qlazy.qcow2 1G
qemu-img create -q -f qcow2 -b gone.qcow2 -F qcow2 -u qorphan.qcow2 1G	# backing file missing
qemu-io -f qcow2 -c 'write -P 7 0 3M' -c 'write 1G 64k' qq.qcow2 >/dev/null
qemu-io -f raw -c 'write -P 1 1M 1M' qr.raw >/dev/null
for img in qr.raw qq.qcow2 qv2.qcow2 qbig.qcow2 sub/qov.qcow2 qlazy.qcow2 qorphan.qcow2; do
	qemu-img info --output json "$img" >"$work/theirs.json"
	if "$viv" img info --output json "$img" >"$work/ours.json" 2>"$work/err"; then
		msg=$(same_info "$work/ours.json" "$work/theirs.json") &&
			pass "info --output json $img agrees with qemu-img" ||
			fail "info --output json $img: $msg"
	else
		fail "info --output json $img: $(cat "$work/err")"
	fi
	qemu-img info "$img" >"$work/theirs.txt"
	"$viv" img info "$img" >"$work/ours.txt" 2>&1
	diff -u "$work/theirs.txt" "$work/ours.txt" >"$work/diff" &&
		pass "info $img prints qemu-img's lines" ||
		fail "info $img differs from qemu-img: $(cat "$work/diff")"
done
"$viv" img info -f raw qq.qcow2 >"$work/out" 2>&1 &&
	grep -q '^file format: raw$' "$work/out" && pass "info -f raw reads a qcow2 file as raw" ||
	fail "info -f raw qq.qcow2: $(cat "$work/out")"

# ---- check: clean, leaking, corrupted -------------------------------------

# hack_refcount FILE CLUSTER VALUE: set a 16-bit refcount by hand.
hack_refcount() {
	python3 - "$@" <<'PY'
import struct, sys
path, cluster, value = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    h = f.read(104)
    cluster_bits = struct.unpack(">I", h[20:24])[0]
    reftable = struct.unpack(">Q", h[48:56])[0]
    f.seek(reftable)
    block = struct.unpack(">Q", f.read(8))[0]
    assert block and cluster < (1 << cluster_bits) // 2
    f.seek(block + 2 * cluster)
    f.write(struct.pack(">H", value))
PY
}

# check_like NAME WANT_RC: vivarium's exit status, stdout and JSON equal
# qemu-img's.  The fragmented-cluster count is compared once, on its own
# (frag_like), so that a difference there names itself.
check_like() {
	local img=$1 want=$2 rc qrc
	qemu-img check "$img" >"$work/theirs.txt" 2>/dev/null; qrc=$?
	"$viv" img check "$img" >"$work/ours.txt" 2>"$work/err"; rc=$?
	[ $qrc = "$want" ] || fail "$img: qemu-img check exits $qrc, the test expected $want"
	[ $rc = "$want" ] && pass "check $img exits $rc" ||
		fail "check $img exits $rc, not $want: $(cat "$work/err")"
	sed -i 's/[0-9.]*% fragmented/N% fragmented/' "$work/theirs.txt" "$work/ours.txt"
	diff -u "$work/theirs.txt" "$work/ours.txt" >"$work/diff" &&
		pass "check $img prints qemu-img's report" ||
		fail "check $img report differs: $(cat "$work/diff")"
	qemu-img check --output json "$img" >"$work/theirs.json" 2>/dev/null
	"$viv" img check --output json "$img" >"$work/ours.json" 2>/dev/null
	python3 - "$work/ours.json" "$work/theirs.json" <<'PY' >"$work/diff" &&
import json, sys
ours, theirs = (json.load(open(f)) for f in sys.argv[1:3])
for d in ours, theirs:
    d.pop("fragmented-clusters", None)
if ours != theirs:
    print(f"ours {ours} qemu-img {theirs}")
    sys.exit(1)
PY
		pass "check --output json $img equals qemu-img's" ||
		fail "check --output json $img: $(cat "$work/diff")"
}

# frag_like NAME: the fragmented-cluster counts agree.  QEMU counts a data
# cluster as fragmented when it does not follow the previous data cluster
# of the same L2 table, and every compressed cluster.
frag_like() {
	local q v
	q=$(qemu-img check --output json "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("fragmented-clusters", 0))')
	v=$("$viv" img check --output json "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("fragmented-clusters", 0))')
	[ "$q" = "$v" ] && pass "check $1: $v fragmented clusters, as qemu-img counts" ||
		fail "check $1: $v fragmented clusters, qemu-img counts $q (QEMU restarts at each L2 table and counts every compressed cluster)"
}

cp qq.qcow2 clean.qcow2
check_like clean.qcow2 0
frag_like clean.qcow2
qemu-img create -q -f qcow2 frag.qcow2 1G	# clusters out of order in one L2 table
qemu-io -f qcow2 -c 'write 0 64k' -c 'write 2M 64k' -c 'write 64k 64k' frag.qcow2 >/dev/null
check_like frag.qcow2 0
frag_like frag.qcow2
qemu-io -f raw -c 'write -P 3 0 2M' qr.raw >/dev/null	# compressed clusters
qemu-img convert -c -O qcow2 qr.raw zip.qcow2
check_like zip.qcow2 0
frag_like zip.qcow2
cp qq.qcow2 leaky.qcow2
hack_refcount leaky.qcow2 0 2		# the header cluster counted twice
check_like leaky.qcow2 3
grep -q "1 leaked clusters were found on the image." "$work/ours.txt" ||
	fail "leaky.qcow2: no leak line"
cp qq.qcow2 corrupt.qcow2
# The first data cluster's refcount dropped to 0: a corruption.
data=$(qemu-img map --output json corrupt.qcow2 | python3 -c 'import json,sys
print(next(e["offset"] for e in json.load(sys.stdin) if e["data"] and "offset" in e))')
hack_refcount corrupt.qcow2 $((data / 65536)) 0
check_like corrupt.qcow2 2
grep -q "errors were found on the image." "$work/ours.txt" ||
	fail "corrupt.qcow2: no error line"
"$viv" img check qr.raw >"$work/out" 2>&1 && grep -q "No errors were found" "$work/out" &&
	pass "check on raw: clean" || fail "check qr.raw: $(cat "$work/out")"

# ---- convert ----------------------------------------------------------------

# A 40 MiB raw disk: random data, zero-filled data, holes, an odd tail.
head -c 40M /dev/zero >src.raw
truncate -s 40M src.raw
fallocate -p -o 0 -l 40M src.raw 2>/dev/null
for at in 0 3 9 17 31; do
	head -c 1M /dev/urandom | dd of=src.raw bs=1M seek=$at conv=notrunc status=none
done
dd if=/dev/zero of=src.raw bs=1M seek=20 count=4 conv=notrunc status=none	# written zeroes
head -c 1000 /dev/urandom | dd of=src.raw bs=1 seek=$((40 * 1048576 - 1000)) conv=notrunc status=none

expect "convert raw -> qcow2" "$viv" img convert -f raw -O qcow2 src.raw rt.qcow2
expect "qemu-img compare src.raw rt.qcow2" qemu-img compare src.raw rt.qcow2
expect "qemu-img check rt.qcow2" qemu-img check rt.qcow2
expect "convert qcow2 -> raw, -p" "$viv" img convert -p -O raw rt.qcow2 rt.raw
grep -q '(100.00/100%)' "$work/out" && pass "convert -p shows (100.00/100%)" ||
	fail "convert -p printed '$(cat "$work/out")'"
cmp -s src.raw rt.raw && pass "raw -> qcow2 -> raw round trip is byte-identical" ||
	fail "rt.raw differs from src.raw"
# Sparse: 5 MiB of data + 1000 bytes; the 4 MiB of written zeroes stay holes.
used=$(( $(stat -c %b rt.raw 2>/dev/null || echo 999999999) * 512 ))
[ $used -le $((6 * 1048576)) ] && pass "converted raw stays sparse ($used bytes used)" ||
	fail "rt.raw uses $used bytes for 5 MiB of data"
ours_alloc=$(qemu-img check --output json rt.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("allocated-clusters"))')
qemu-img convert -f raw -O qcow2 src.raw ref.qcow2
ref_alloc=$(qemu-img check --output json ref.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("allocated-clusters"))')
[ "$ours_alloc" = "$ref_alloc" ] && pass "convert allocates as qemu-img convert does ($ours_alloc clusters)" ||
	fail "convert allocated $ours_alloc clusters, qemu-img convert $ref_alloc"

# A backing chain: base (qcow2 over raw) <- top; the result stands alone.
qemu-img create -q -f qcow2 -b src.raw -F raw mid.qcow2
qemu-io -f qcow2 -c 'write -P 0x11 2M 1M' -c 'write -z 9M 64k' -c 'write -P 0x22 39M 512' mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
qemu-io -f qcow2 -c 'write -P 0x33 17M 128k' -c 'write -P 0x44 25M 4k' top.qcow2 >/dev/null
expect "convert a backing chain to qcow2" "$viv" img convert -O qcow2 top.qcow2 flat.qcow2
qemu-img convert -O qcow2 top.qcow2 qflat.qcow2
expect "flat.qcow2 equals qemu-img convert's" qemu-img compare -f qcow2 -F qcow2 flat.qcow2 qflat.qcow2
expect "flat.qcow2 equals the chain" qemu-img compare flat.qcow2 top.qcow2
qemu-img info --output json flat.qcow2 >"$work/flat.json"
[ "$(jget "$work/flat.json" backing-filename)" = None ] && pass "flat.qcow2 has no backing file" ||
	fail "flat.qcow2 still has a backing file"
a=$(qemu-img check --output json flat.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("allocated-clusters"))')
b=$(qemu-img check --output json qflat.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("allocated-clusters"))')
[ "$a" = "$b" ] && pass "flat.qcow2 as allocated as qemu-img's ($a clusters)" ||
	fail "flat.qcow2 has $a allocated clusters, qemu-img convert's $b"
expect "convert a chain with -o cluster_size=4k,compat=0.10" \
	"$viv" img convert -O qcow2 -o cluster_size=4k,compat=0.10 top.qcow2 flat4k.qcow2
expect "flat4k.qcow2 equals the chain" qemu-img compare flat4k.qcow2 top.qcow2
expect "qemu-img check flat4k.qcow2" qemu-img check flat4k.qcow2

# ---- bad input: one line, non-zero exit, nothing made or changed ------------

# Names, sizes and modification times of every image file.
snapshot() { find "$work/img" -type f -printf '%P %s %T@\n' | sort; }
snapshot >"$work/before"
# bad WANT_RC DESC ARGS...: exits WANT_RC (or any non-zero for "x"), one line
# on stderr, nothing on stdout, no file made or changed.
bad() {
	local want=$1 desc=$2 rc lines; shift 2
	"$viv" img "$@" >"$work/out" 2>"$work/err"; rc=$?
	lines=$(wc -l <"$work/err")
	if { [ "$want" = x ] && [ $rc != 0 ]; } || [ $rc = "$want" ]; then
		if [ "$lines" = 1 ] && [ ! -s "$work/out" ]; then
			pass "$desc: exit $rc: $(cat "$work/err")"
		else
			fail "$desc: $lines lines on stderr, stdout '$(cat "$work/out")': $(cat "$work/err")"
		fi
	else
		fail "$desc: exit $rc, wanted $want: $(cat "$work/err")"
	fi
	snapshot >"$work/after"
	diff -q "$work/before" "$work/after" >/dev/null ||
		fail "$desc: files changed: $(diff "$work/before" "$work/after")"
}
bad 1 "info on a missing file" info missing.qcow2
bad 1 "check on a missing file" check missing.qcow2
bad 1 "convert from a missing file" convert -O qcow2 missing.raw new.qcow2
bad 1 "create over an existing image" create -f qcow2 q.qcow2 1G
bad 1 "convert onto an existing image" convert -O raw src.raw rt.raw
bad 2 "create with size 12Q" create -f qcow2 new.qcow2 12Q
bad 2 "create with format vmdk" create -f vmdk new.vmdk 1G
bad 2 "create without a size" create -f qcow2 new.qcow2
bad 2 "convert to format vdi" convert -O vdi src.raw new.vdi
bad 2 "create with cluster_size 3000" create -f qcow2 -o cluster_size=3000 new.qcow2 1G
bad 2 "create a raw image with a backing file" create -f raw -b src.raw new.raw 1G
bad 2 "unknown option" info --bogus q.qcow2
bad 2 "unknown subcommand" resize q.qcow2 2G
bad 1 "create over a missing backing file" create -f qcow2 -b nothere.qcow2 -F qcow2 new.qcow2
bad x "a qcow2 with a broken header" info -f qcow2 src.raw

# An image a VM is using (another process holds a write lock): check and
# convert refuse with one line, info still reads it, -U reads it anyway.
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+b")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(60)' r.raw "$work/locked" &
locker=$!
for _ in $(seq 50); do [ -e "$work/locked" ] && break; sleep 0.1; done
bad 1 "check on an image in use" check r.raw
grep -q "in use by another process" "$work/err" || fail "check on a locked image said: $(cat "$work/err")"
bad 1 "convert from an image in use" convert -O raw r.raw new.raw
"$viv" img info r.raw >"$work/out" 2>&1 && pass "info reads an image in use" ||
	fail "info on a locked image: $(cat "$work/out")"
"$viv" img check -U r.raw >"$work/out" 2>&1 && pass "check -U reads an image in use" ||
	fail "check -U on a locked image: $(cat "$work/out")"
kill $locker; wait $locker 2>/dev/null

# kill -9 in the middle of a convert leaves nothing: the copy is a nameless
# file until it is complete.  A temporary name left by an older, killed
# convert (a dead PID) is cleaned up by the next one; a live one's is not.
mkdir "$work/kill"
yes vivarium-data | head -c 256M >big.raw
"$viv" img convert -O qcow2 big.raw "$work/kill/out.qcow2" >/dev/null 2>&1 &
cpid=$!
midway=
for _ in $(seq 200); do
	for f in /proc/$cpid/fd/*; do
		case $(readlink "$f" 2>/dev/null) in
		"$work/kill/"*) [ "$(stat -L -c %b "$f" 2>/dev/null || echo 0)" -gt 16384 ] && midway=1 ;;
		esac
	done
	[ -n "$midway" ] && break
	sleep 0.02
done
kill -9 $cpid 2>/dev/null; wait $cpid 2>/dev/null; rc=$?
if [ -n "$midway" ] && [ $rc = 137 ] && [ -z "$(ls -A "$work/kill")" ]; then
	pass "kill -9 mid-convert: nothing left in the destination's folder"
else
	fail "kill -9 mid-convert (mid-way: ${midway:-no}, exit $rc): left '$(ls -A "$work/kill" | tr '\n' ' ')'"
fi
sh -c 'exit 0' & dead=$!; wait $dead
touch "$work/kill/.out.qcow2.vivarium-$dead-0" "$work/kill/.out.qcow2.vivarium-$$-0"
expect "convert again after the kill" "$viv" img convert -O qcow2 big.raw "$work/kill/out.qcow2"
expect "the rerun's image equals its source" qemu-img compare -f raw -F qcow2 big.raw "$work/kill/out.qcow2"
left=$(ls -A "$work/kill" | tr '\n' ' ')
[ "$left" = ".out.qcow2.vivarium-$$-0 out.qcow2 " ] &&
	pass "the dead convert's temporary is gone, a live process's stays" ||
	fail "after the rerun the folder holds '$left'"
rm -f big.raw "$work/kill/out.qcow2"

# A full disk: convert into a 2 MiB tmpfs fails cleanly and leaves nothing.
if [ "$(id -u)" = 0 ] && mkdir -p "$work/full" && mount -t tmpfs -o size=2M tmpfs "$work/full" 2>/dev/null; then
	mnt=$work/full
	"$viv" img convert -O raw src.raw "$mnt/out.raw" >"$work/out" 2>"$work/err"; rc=$?
	if [ $rc != 0 ] && [ "$(wc -l <"$work/err")" = 1 ] && [ -z "$(ls -A "$mnt")" ]; then
		pass "convert onto a full disk: exit $rc, nothing left: $(cat "$work/err")"
	else
		fail "convert onto a full disk: exit $rc, left '$(ls -A "$mnt")': $(cat "$work/err")"
	fi
	"$viv" img create -f raw "$mnt/ok.raw" 1G >/dev/null 2>&1 &&
		pass "a sparse raw create fits on the small disk" || fail "sparse create on a small tmpfs failed"
	dd if=/dev/zero of="$mnt/filler" bs=64k status=none 2>/dev/null	# until full
	"$viv" img create -f qcow2 "$mnt/new.qcow2" 1G >"$work/out" 2>"$work/err"; rc=$?
	left=$(ls -A "$mnt" | grep -v -x -e ok.raw -e filler)
	if [ $rc != 0 ] && [ "$(wc -l <"$work/err")" = 1 ] && [ -z "$left" ]; then
		pass "qcow2 create on a full disk: exit $rc, nothing left: $(cat "$work/err")"
	else
		fail "qcow2 create on a full disk: exit $rc, left '$left': $(cat "$work/err")"
	fi
	umount "$mnt" && mnt=
else
	echo "# skipped the full-disk case: cannot mount a tmpfs here"
fi

echo "# $failures failures"
[ $failures = 0 ]
