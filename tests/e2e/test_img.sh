#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_img.sh VIVARIUM [BLK_HOLD] - `vivarium img create|info|check|convert|
# rebase|commit` against
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
#   - rebase -u writes the header qemu-img rebase -u writes (qemu-img info);
#     safe rebase (onto another base, the grandparent, nothing) keeps what
#     the top image reads; commit (and -d) leaves the images qemu-img commit
#     leaves; images in use (held by blk_hold) are refused; killed midway,
#     commit and rebase leave images qemu-img check accepts, reading as
#     before;
#   - bad input gives one line on stderr, a non-zero exit, and no file made
#     or changed.
#
# Fast (a few seconds, small images): suite 'unit'.
# Exit: 0 pass, 1 fail, 77 skip (no qemu-img / qemu-io / python3).

set -u

viv=${1:-}
hold=${2:-}	# blk_hold (tests/e2e/blk_hold.c), for the image-lock cases
skip() { echo "SKIP: $*"; exit 77; }

[ -n "$viv" ] && [ -x "$viv" ] || { echo "FAIL: vivarium binary '$viv' missing"; exit 1; }
viv=$(realpath "$viv")
[ -n "$hold" ] && hold=$(realpath "$hold")
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

# ---- rebase and commit: backing chains, judged by qemu-img ----------------

# Chains in their own folder; a copy per case, so each tool gets the same.
mkdir "$work/chain" && cd "$work/chain" || exit 1
# mkchain DIR [CREATE_OPTS]: base <- mid <- top, each with data and zero
# clusters over the others' (all 16 MiB); DIR/flat.raw is what top reads.
mkchain() {
	local d=$1 o=${2:-cluster_size=65536}
	mkdir -p "$d"
	qemu-img create -q -f qcow2 -o "$o" "$d/base.qcow2" 16M
	qemu-io -c "write -P 0x11 0 1M" -c "write -z 2M 1M" -c "write -P 0x22 4M 64k" \
		-c "write -P 0x23 15M 1M" "$d/base.qcow2" >/dev/null
	qemu-img create -q -f qcow2 -o "$o" -b base.qcow2 -F qcow2 "$d/mid.qcow2"
	qemu-io -c "write -P 0x33 512k 1M" -c "write -z 4M 32k" -c "write -P 0x44 8M 100k" \
		-c "write -z 15M 64k" "$d/mid.qcow2" >/dev/null
	qemu-img create -q -f qcow2 -o "$o" -b mid.qcow2 -F qcow2 "$d/top.qcow2"
	qemu-io -c "write -P 0x55 0 4k" -c "write -z 8M 64k" -c "write -P 0x66 12M 1M" \
		-c "write -z 1M 512k" "$d/top.qcow2" >/dev/null
	qemu-img convert -O raw "$d/top.qcow2" "$d/flat.raw"
}
# clean DESC IMAGE...: qemu-img check finds nothing on each.
clean() {
	local desc=$1 bad=
	shift
	for i in "$@"; do
		qemu-img check -q "$i" >"$work/out" 2>&1 || bad="$bad $i: $(head -c 300 "$work/out")"
	done
	[ -z "$bad" ] && pass "$desc: qemu-img check clean" || fail "$desc: qemu-img check:$bad"
}
# same DESC A B: qemu-img compare says identical.
same() {
	qemu-img compare -q "$2" "$3" >"$work/out" 2>&1 &&
		pass "$1: $2 reads as $3" || fail "$1: $2 differs from $3: $(head -c 300 "$work/out")"
}
# backing_info IMAGE: what qemu-img info says of its backing file.
backing_info() {
	qemu-img info --output json "$1" 2>&1 | python3 -c 'import json,sys
d = json.load(sys.stdin)
print(d.get("virtual-size"), d.get("backing-filename"), d.get("full-backing-filename"),
      d.get("backing-filename-format"))'
}
# one_line DESC RC: the command failed with exit 1 and one line on stderr.
one_line() {
	if [ "$2" = 1 ] && [ "$(wc -l <"$work/err")" = 1 ]; then pass "$1: $(cat "$work/err")"
	else fail "$1: exit $2, stderr: $(head -c 600 "$work/err")"; fi
}

mkchain c
mkchain c2 "compat=0.10,cluster_size=4096"
mkchain c3 "cluster_size=512"
clean "the chains qemu-img built" c/*.qcow2 c2/*.qcow2 c3/*.qcow2

# rebase -u: only the header changes, as qemu-img rebase -u changes it.
for v in c c2 c3; do
	for b in base.qcow2 mid.qcow2 "" "$PWD/$v/base.qcow2" nothere.qcow2; do
		rm -rf u1 u2 && cp -r $v u1 && cp -r $v u2
		fo=; [ -n "$b" ] && fo="-F qcow2"
		"$viv" img rebase -u -b "$b" $fo u1/top.qcow2 >"$work/out" 2>"$work/err" ||
			{ fail "$v: rebase -u -b '$b': $(cat "$work/err")"; continue; }
		qemu-img rebase -u -b "$b" $fo u2/top.qcow2
		ours=$(backing_info u1/top.qcow2 | sed 's,u1/,u2/,g'); theirs=$(backing_info u2/top.qcow2)
		[ "$ours" = "$theirs" ] && pass "$v: rebase -u -b '$b': qemu-img info agrees ($ours)" ||
			fail "$v: rebase -u -b '$b': qemu-img info says '$ours', after qemu-img's '$theirs'"
		[ "$b" = nothere.qcow2 ] || clean "$v: rebase -u -b '$b'" u1/top.qcow2
	done
done
# The changed header again, by a second change (name placed past the first one).
rm -rf u1 && cp -r c u1
"$viv" img rebase -u -b base.qcow2 -F qcow2 u1/top.qcow2 && "$viv" img rebase -u -b mid.qcow2 -F qcow2 u1/top.qcow2 &&
	[ "$(backing_info u1/top.qcow2 | sed 's,u1/,c/,g')" = "$(backing_info c/top.qcow2)" ] && same "rebase -u there and back" u1/top.qcow2 c/flat.raw ||
	fail "rebase -u there and back: $(backing_info u1/top.qcow2)"
# A name that fits no 512-byte header cluster: refused, nothing changed.
rm -rf u1 && cp -r c3 u1
long=$(printf 'x%.0s' $(seq 600)).qcow2
"$viv" img rebase -u -b "$long" -F qcow2 u1/top.qcow2 >"$work/out" 2>"$work/err"
one_line "rebase -u with a 604-byte name in a 512-byte cluster is refused" $?
cmp -s u1/top.qcow2 c3/top.qcow2 && pass "the refused rebase left the image alone" || fail "the refused rebase changed the image"
"$viv" img rebase -u -b base.qcow2 u1/top.qcow2 >"$work/out" 2>"$work/err"; rc=$?
[ $rc = 2 ] && pass "rebase -b without -F is refused, as qemu-img does: $(cat "$work/err")" || fail "rebase -b without -F: exit $rc"

# Safe rebase: top reads the same onto another base, onto its grandparent,
# onto nothing.
qemu-img create -q -f qcow2 other.qcow2 16M
qemu-io -c "write -P 0x77 0 16M" -c "write -z 4M 1M" other.qcow2 >/dev/null
for v in c c2 c3; do
	for b in base.qcow2 ../other.qcow2 ""; do
		rm -rf s1 && cp -r $v s1
		fo=; [ -n "$b" ] && fo="-F qcow2"
		expect "$v: safe rebase -b '$b'" "$viv" img rebase -b "$b" $fo s1/top.qcow2
		same "$v: safe rebase -b '$b'" s1/top.qcow2 s1/flat.raw
		clean "$v: safe rebase -b '$b'" s1/*.qcow2
		cmp -s s1/mid.qcow2 $v/mid.qcow2 && cmp -s s1/base.qcow2 $v/base.qcow2 &&
			pass "$v: safe rebase left the old backing files alone" || fail "$v: safe rebase changed a backing file"
		got=$(qemu-img info --output json s1/top.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin).get("backing-filename", ""))')
		[ "$got" = "$b" ] && pass "$v: top's backing file is now '$b'" || fail "$v: top's backing file is '$got', not '$b'"
	done
done
same "other.qcow2 unchanged" other.qcow2 other.qcow2

# commit: the same images as qemu-img commit's, and top reads the same.
for v in c c2 c3; do
	for d in "" -d; do
		rm -rf m1 m2 && cp -r $v m1 && cp -r $v m2
		"$viv" img commit $d m1/top.qcow2 >"$work/out" 2>"$work/err" ||
			{ fail "$v: commit $d: $(cat "$work/err")"; continue; }
		[ "$(cat "$work/out")" = "Image committed." ] || fail "$v: commit $d printed '$(cat "$work/out")'"
		qemu-img commit -q $d m2/top.qcow2
		for i in base mid top; do
			same "$v: commit${d:+ $d}, $i.qcow2 as after qemu-img commit" m1/$i.qcow2 m2/$i.qcow2
		done
		same "$v: commit${d:+ $d}" m1/top.qcow2 m1/flat.raw
		clean "$v: commit${d:+ $d}" m1/*.qcow2
		alloc=$(qemu-img map --output json m1/top.qcow2 | python3 -c 'import json,sys
print(sum(1 for e in json.load(sys.stdin) if e["depth"] == 0 and e["data"]))')
		if [ -z "$d" ]; then [ "$alloc" = 0 ] && pass "$v: commit emptied top" || fail "$v: commit left $alloc extents in top"
		else [ "$alloc" != 0 ] && pass "$v: commit -d kept top" || fail "$v: commit -d emptied top"; fi
	done
done

# Images in use are refused with one line and left alone.
if [ -n "$hold" ] && [ -x "$hold" ]; then
	rm -rf l && cp -r c l
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 l/sib.qcow2	# another user of mid
	for held in top sib; do
		rm -f "$work/hold.in" && mkfifo "$work/hold.in"
		"$hold" l/$held.qcow2 <"$work/hold.in" >"$work/holder.out" 2>&1 &
		holder=$!
		exec {hold_fd}>"$work/hold.in"
		for _ in $(seq 100); do grep -q held "$work/holder.out" && break; sleep 0.05; done
		cp l/top.qcow2 l/mid.qcow2 "$work/"
		if [ $held = top ]; then
			"$viv" img rebase -u -b base.qcow2 -F qcow2 l/top.qcow2 >"$work/out" 2>"$work/err"
			one_line "rebase -u of an image a VM holds is refused" $?
			"$viv" img rebase -b base.qcow2 -F qcow2 l/top.qcow2 >"$work/out" 2>"$work/err"
			one_line "rebase of an image a VM holds is refused" $?
		fi
		"$viv" img commit l/top.qcow2 >"$work/out" 2>"$work/err"
		one_line "commit while a VM holds $held.qcow2 is refused" $?
		exec {hold_fd}>&-
		wait $holder
		cmp -s l/top.qcow2 "$work/top.qcow2" && cmp -s l/mid.qcow2 "$work/mid.qcow2" &&
			pass "the refused commands left top and mid alone" || fail "a refused command changed top or mid"
		clean "after the refusals" l/top.qcow2 l/mid.qcow2
	done
else
	echo "# skipped the image-lock cases: no blk_hold given"
fi

# Killed midway (SIGKILL) through a large commit or safe rebase: every
# image checks clean (leaks allowed) and top still reads the same.
mkdir k && cd k || exit 1
qemu-img create -q -f qcow2 base.qcow2 128M
qemu-io -c "write -P 0x3c 48M 80M" base.qcow2 >/dev/null	# for rebase -b "" to copy
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qemu-io -c "write -P 0x5a 0 48M" -c "write -z 50M 4M" -c "write -P 0x5b 64M 32M" top.qcow2 >/dev/null
qemu-img convert -O raw top.qcow2 flat.raw
killed=0
for cmd in commit rebase; do
	args=(commit); [ $cmd = rebase ] && args=(rebase -b "")
	for delay in 0.02 0.05 0.1; do
		rm -f t.qcow2 b.qcow2 && cp base.qcow2 b.qcow2 && cp top.qcow2 t.qcow2 &&
			qemu-img rebase -u -b b.qcow2 -F qcow2 t.qcow2
		"$viv" img "${args[@]}" t.qcow2 >/dev/null 2>&1 &
		pid=$!
		sleep $delay
		kill -9 $pid 2>/dev/null
		wait $pid 2>/dev/null
		if [ $? = 137 ]; then how="killed after ${delay}s"; killed=$((killed + 1))
		else how="done within ${delay}s"; fi
		bad=
		for i in t.qcow2 b.qcow2; do
			qemu-img check -q $i >"$work/out" 2>&1; rc=$?
			[ $rc = 0 ] || [ $rc = 3 ] || bad="$bad $i (exit $rc: $(head -c 200 "$work/out"))"
		done
		[ -z "$bad" ] && pass "img $cmd $how: qemu-img check finds no corruption" ||
			fail "img $cmd $how:$bad"
		same "img $cmd $how" t.qcow2 flat.raw
	done
done
echo "# $killed of 6 runs were killed midway (others had finished)"
cd "$work/img" || exit 1

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
