#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_snapshots.sh VIVARIUM - `vivarium snapshot take|list|revert|delete`
# on stopped VMs, with qemu-img/qemu-io as the oracle (no KVM needed):
#   - distinct data written with qemu-io into the active image between
#     takes; after every step each remaining snapshot's frozen image (its
#     whole chain) and the active disk read what copies made beforehand
#     read (qemu-img compare), every image passes qemu-img check, the
#     active chain is as deep as the current snapshot (qemu-img info
#     --backing-chain) and no image is left unused;
#   - list (text tree, "(current)") and list --json against
#     docs/schemas/snapshot-list.schema.json;
#   - revert: the active disk reads the snapshot; delete of a leaf, an
#     inner snapshot with one child, the current one, a root with two
#     children: data unchanged, du down (except where several children each
#     get a copy);
#   - refusals, each one line with every file of the VM unchanged: unknown
#     tag, taken tag, bad tag, raw writable disk, saved state (take), running VM,
#     another snapshot command at work; a read-only disk is not snapshotted;
#   - kill -9 of take and of delete at random points: every earlier
#     snapshot intact, qemu-img check clean (leaks allowed), and the next
#     command finishes the job;
#   - `vivarium show` counts snapshots; `vivarium delete` removes them all.
#
# Quick (20-40 s), no KVM: suite e2e.
# Exit: 0 pass, 1 fail, 77 skip (no qemu-img / qemu-io / python3).

set -u
umask 022
here=$(cd "$(dirname "$0")" && pwd)
viv=${1:?usage: test_snapshots.sh VIVARIUM}
schema=$here/../../docs/schemas/snapshot-list.schema.json
checker=$here/check_json_schema.py

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$viv" ] || { echo "FAIL: no vivarium binary at '$viv'"; exit 1; }
viv=$(realpath "$viv")
for p in qemu-img qemu-io python3; do
	command -v $p >/dev/null || skip "$p is not installed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-snap.XXXXXX")
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" "$work/ref" && chmod 700 "$XDG_RUNTIME_DIR"
vms=$XDG_DATA_HOME/vivarium/vms
holder=
cleanup() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

V_TIMEOUT=60
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# fingerprint NAME: every file of the VM's folder with its hash.
fingerprint() {
	(cd "$vms/$1" && find . -type f | sort | xargs -r sha256sum)
}

# refuse DESC NAME ARGS...: one line on stderr, non-zero, nothing changed.
refuse() {
	local desc=$1 name=$2 before
	shift 2
	before=$(fingerprint "$name")
	v "$@"
	if [ "$rc" -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && [ -z "$out" ] &&
	   [ "$before" = "$(fingerprint "$name")" ]; then
		ok "$desc (rc $rc: $err)"
	else
		bad "$desc: rc $rc, stdout '$out', stderr: $err"
	fi
}

# active NAME: the absolute path of disk0.
active() {
	local p
	p=$(sed -n '/^\[disk0\]/,/^\[/s/^path=//p' "$vms/$1/vm.conf")
	case $p in /*) echo "$p" ;; *) echo "$vms/$1/$p" ;; esac
}

# put NAME PATTERN OFFSET LEN: qemu-io writes into the active disk.
put() {
	qemu-io -f qcow2 -c "write -P $2 $3 $4" "$(active "$1")" >/dev/null ||
		bad "qemu-io write -P $2 $3 $4 into $1"
}

# snaps NAME: "TAG IMAGE CURRENT DEPTH" per snapshot (disk0), from list --json.
snaps() {
	"$viv" snapshot list "$1" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
by = {s["id"]: s for s in d["snapshots"]}
for s in d["snapshots"]:
    depth, p = 0, s["parent"]
    while p:
        depth, p = depth + 1, by[p]["parent"]
    img = next((x["image"] for x in s["disks"] if x["disk"] == "disk0"), "-")
    print(s["tag"], img, int(s["current"]), depth)'
}

# ref NAME TAG: remember what snapshot TAG reads (TAG "active": the disk).
ref() {
	local img
	if [ "$2" = active ]; then
		img=$(active "$1")
	else
		img=$(snaps "$1" | awk -v t="$2" '$1 == t { print $2 }')
	fi
	rm -f "$work/ref/$1-$2.raw"
	qemu-img convert -O raw "$img" "$work/ref/$1-$2.raw" || bad "ref $2: convert $img"
}

# verify NAME DESC [loose|killed]: every snapshot and the disk read as
# their copies, every image checks clean, list --json is valid; unless
# loose (right after a kill: leaks allowed, nothing more), no image in the
# folder is unused and the active chain is exactly as deep as the current
# snapshot — or deeper after kills (killed): a take killed between vm.conf
# and index.json leaves its overlay as an extra layer no snapshot names.
verify() {
	local name=$1 desc=$2 loose=${3:-} problems="" tag img cur depth f c want=1 n list chain
	list=$(snaps "$name")
	while read -r tag img cur depth; do
		[ -n "$tag" ] && [ -f "$work/ref/$name-$tag.raw" ] || continue
		qemu-img compare -q "$img" "$work/ref/$name-$tag.raw" 2>/dev/null ||
			problems+=" snapshot $tag differs;"
		[ "$cur" = 1 ] && want=$((depth + 2))
	done <<<"$list"
	qemu-img compare -q "$(active "$name")" "$work/ref/$name-active.raw" 2>/dev/null ||
		problems+=" the disk differs;"
	for f in "$vms/$name"/*.qcow2 "$vms/$name"/snapshots/*.qcow2; do
		[ -f "$f" ] || continue
		qemu-img check -q "$f" >/dev/null 2>&1
		c=$?
		[ "$c" = 0 ] || { [ -n "$loose" ] && [ "$c" = 3 ]; } || problems+=" check $f: $c;"
	done
	"$viv" snapshot list "$name" --json >"$work/list.json" 2>&1 &&
		python3 "$checker" "$schema" "$work/list.json" >/dev/null 2>&1 ||
		problems+=" list --json invalid;"
	if [ "$loose" != loose ]; then
		chain=$(qemu-img info --backing-chain --output json "$(active "$name")" |
			python3 -c 'import json, os, sys
for i in json.load(sys.stdin): print(os.path.realpath(i["filename"]))')
		n=$(echo "$chain" | wc -l)
		[ -z "$list" ] && want=1
		[ "$n" = "$want" ] || { [ "$loose" = killed ] && [ "$n" -gt "$want" ]; } ||
			problems+=" chain of $n images, want $want;"
		# Every image is the disk's chain or a snapshot's.
		chain+=$'\n'$(echo "$list" | awk 'NF {print $2}' | xargs -r realpath)
		for f in "$vms/$name"/*.qcow2 "$vms/$name"/snapshots/*.qcow2; do
			[ -f "$f" ] || continue
			echo "$chain" | grep -qx "$(realpath "$f")" || problems+=" unused $(basename "$f");"
		done
	fi
	if [ -z "$problems" ]; then ok "$desc: data, check, chain"; else bad "$desc:$problems"; fi
}

kb() { du -sk "$vms/$1" | cut -f1; }

echo kernel >"$work/kernel"
v create t --kernel "$work/kernel" --disk-size 64M
check '[ "$rc" = 0 ]' "create t ($err)"
v snapshot list t
check '[ "$rc" = 0 ] && [ "$out" = "VM '"'t'"' has no snapshots" ]' "list with none: $out"

# ---- take, list, revert ---------------------------------------------------
put t 0x11 0 2M
ref t active
v snapshot take t a --description "first install"
check '[ "$rc" = 0 ] && [ -z "$err" ]' "take a: $out"
ref t a
verify t "after take a"
put t 0x22 1M 2M
v snapshot take t b
ref t b
put t 0x33 2M 2M
v snapshot take t c
ref t c
put t 0x34 3M 1M
ref t active
verify t "after takes b, c and a write"
v snapshot list t
echo "$out" | sed 's/^/#   /'
check '[ "$(echo "$out" | awk "NR>1 {print \$1}" | tr "\n" " ")" = "a b c " ] &&
	echo "$out" | grep -q "^  b " && echo "$out" | grep -q "^    c .*(current)$" &&
	echo "$out" | grep -q "^a .*first install$"' "list: a tree, c current"
python3 "$checker" "$schema" <("$viv" snapshot list t --json) >/dev/null
check '[ $? = 0 ]' "list --json matches the schema"
n0=$(ls "$vms/t/snapshots"/*.qcow2 | wc -l)
v snapshot revert t b
check '[ "$rc" = 0 ]' "revert b: $out$err"
cp "$work/ref/t-b.raw" "$work/ref/t-active.raw"
verify t "after revert b (the disk reads b)"
check '[ "$(ls "$vms/t/snapshots"/*.qcow2 | wc -l)" = "$n0" ]' "revert removed the old overlay"
check '[ "$(snaps t | awk "\$3 == 1 {print \$1}")" = b ]' "b is current"
put t 0x44 0 1M
v snapshot take t d
ref t d
put t 0x45 0 512K
v snapshot revert t a
cp "$work/ref/t-a.raw" "$work/ref/t-active.raw"
put t 0x50 0 512K
v snapshot take t e --description "second branch"
ref t e
put t 0x55 0 1M
ref t active
verify t "tree a -> {b -> {c, d}, e}, at e"

# ---- delete: every shape ------------------------------------------------------
for step in "c leaf" "b one-child" "e current" "a two-children" "d last"; do
	tag=${step% *}
	before=$(kb t)
	v snapshot delete t "$tag"
	check '[ "$rc" = 0 ] && [ -z "$err" ]' "delete $tag (${step#* }): $out"
	rm -f "$work/ref/t-$tag.raw"
	verify t "after delete $tag"
	check '! snaps t | grep -q "^$tag "' "$tag is gone from the list"
	[ "$tag" = a ] || check '[ "$(kb t)" -lt "$before" ]' "du down after delete $tag ($before -> $(kb t) KiB)"
done
check '[ "$(snaps t | wc -l)" = 0 ] && [ ! -e "$vms/t/disk.qcow2" ]' "all deleted; the original image merged away"

# ---- refusals -------------------------------------------------------------------
v snapshot take t base
ref t base
refuse "take of a taken tag" t snapshot take t base
refuse "a bad tag" t snapshot take t "a b"
refuse "revert of an unknown tag" t snapshot revert t nope
refuse "delete of an unknown tag" t snapshot delete t nope
refuse "a VM that does not exist" t snapshot take nosuch x
refuse "list of a VM that does not exist" t snapshot list nosuch
: >"$vms/t/saved.state"
refuse "take with a saved state" t snapshot take t x
# A revert throws the current state away, a saved state of it included.
v snapshot revert t base
check '[ "$rc" -eq 0 ] && [ ! -e "$vms/t/saved.state" ]' "revert drops a saved state of the state it throws away"
rm -f "$vms/t/saved.state"
# Another snapshot command at work holds the folder's flock.
python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True); time.sleep(30)' "$vms/t" >"$work/lock.out" &
holder=$!
for _ in $(seq 50); do grep -q locked "$work/lock.out" && break; sleep 0.1; done
refuse "another snapshot command at work" t snapshot take t x
kill $holder
wait $holder 2>/dev/null
rm -f "$work/lock.out"
# A running VM: its process holds a write lock on vm.pid.
: >"$vms/t/vm.pid"
python3 -c '
import fcntl, os, sys, time
f = open(sys.argv[1], "r+"); f.write(str(os.getpid())); f.flush()
fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(30)' "$vms/t/vm.pid" >"$work/lock.out" &
holder=$!
for _ in $(seq 50); do grep -q locked "$work/lock.out" && break; sleep 0.1; done
for cmd in take revert delete; do
	refuse "$cmd of a running VM" t snapshot $cmd t base
done
check 'grep -q "is running: stop it first\|not running\|cannot connect\|control" "$work/err"' "the running message: $err"
kill $holder
wait $holder 2>/dev/null
holder=
rm -f "$vms/t/vm.pid"
# A raw writable disk cannot hold snapshots; a read-only one is left alone.
v create r --kernel "$work/kernel"
qemu-img create -q -f raw "$vms/r/data.img" 16M
qemu-img create -q -f qcow2 "$vms/r/sys.qcow2" 16M
printf '[disk0]\npath=sys.qcow2\nformat=qcow2\n[disk1]\npath=data.img\nformat=raw\n' >>"$vms/r/vm.conf"
refuse "a raw writable disk" r snapshot take r x
check 'echo "$err" | grep -q "vivarium img convert -O qcow2"' "the raw refusal suggests img convert"
sed -i '/^path=data.img/a readonly=true' "$vms/r/vm.conf"
v snapshot take r x
check '[ "$rc" = 0 ] && grep -q "^path=data.img" "$vms/r/vm.conf" &&
	[ "$(snaps r | wc -l)" = 1 ] && ! grep -q data.img "$vms/r/snapshots/index.json"' \
	"a read-only raw disk is shared as it is: $out$err"

# ---- kill -9 ---------------------------------------------------------------------
# Bigger layers, so that a delete streams for a while.
for i in 1 2 3 4 5 6 7 8; do
	put t "0x6$i" "$(( (i % 3) * 8 ))M" 12M
	ref t active
	v snapshot take t "k$i"
	ref t "k$i"
	put t "0x7$i" "$(( (i % 2) * 16 + 4))M" 8M
	ref t active
	# A take runs 20-80 ms, a delete 40-150 ms here, more on a busy
	# machine: kill later each round, so that early and late kills and
	# complete runs all come up.
	timeout -s KILL "$(printf 0.%03d $((i * 20 - 15 + RANDOM % 15)))" "$viv" snapshot take t "x$i" >/dev/null 2>&1
	echo "# take x$i: exit $?"
	# Took or not, the disk reads as before; x$i counts if it was taken.
	snaps t | grep -q "^x$i " && ref t "x$i"
	verify t "kill -9 of take x$i" loose
	victim=$(snaps t | awk 'NR > 1 {print $1}' | shuf -n 1)
	timeout -s KILL "$(printf 0.%03d $((i * 30 - 20 + RANDOM % 20)))" "$viv" snapshot delete t "$victim" >/dev/null 2>&1
	echo "# delete $victim: exit $?"
	verify t "kill -9 of delete $victim" loose
	if snaps t | grep -q "^$victim "; then
		v snapshot delete t "$victim"
		check '[ "$rc" = 0 ]' "delete $victim again finishes it: $out$err"
	fi
	rm -f "$work/ref/t-$victim.raw"
	v snapshot list t
	verify t "after the kills of round $i" killed
done

# ---- show and delete ---------------------------------------------------------------
v show t
n=$(snaps t | wc -l)
check 'echo "$out" | grep -q "^snapshots: *$n$"' "show counts $n snapshots"
v show t --json
check 'echo "$out" | python3 -c "import json,sys; sys.exit(json.load(sys.stdin)[\"snapshots\"] != $n)"' \
	"show --json counts them"
v delete t --yes
check '[ "$rc" = 0 ] && [ ! -e "$vms/t" ] && ! ls -A "$vms" | grep -q "^\.t"' "delete removes the VM and its snapshots"

echo "# $((total - errors))/$total passed"
[ "$errors" = 0 ]
