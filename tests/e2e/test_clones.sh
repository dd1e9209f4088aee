#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_clones.sh VIVARIUM [BLK_HOLD] - `vivarium clone NAME NEW [--snapshot
# TAG] [--linked]` on stopped VMs (and on one that only looks running),
# with qemu-img/qemu-io as the oracle (no KVM needed):
#   - a full clone of the current state: every writable disk a standalone
#     image (qcow2 flattened, raw stays raw) reading what the source's disk
#     reads; files inside the source's folder copied (a read-only disk, an
#     initrd), files outside named where they are; a new UUID and created,
#     new MAC addresses in [nicN] (vm_mac_from_uuid: SHA-256 of "uuid/N"),
#     unknown groups kept, [clone] written; the TPM's state (tpm/)
#     copied; no snapshots, no saved state;
#   - --snapshot TAG: the disks read as the snapshot's; --linked: overlays
#     whose backing file is the snapshot's frozen image (absolute path),
#     qemu-img check clean, writes into the clone do not reach the source;
#   - snapshot delete of the linked clone's snapshot and delete of its
#     source refused, naming the clone, nothing changed (found from the
#     chains: a clone made standalone with img rebase no longer counts;
#     [clone] counts where a chain cannot be read); a snapshot below it
#     can still be deleted (and not while the clone "runs": BLK_HOLD);
#     once the clone is deleted, both work; full clones outlive the source;
#   - a snapshot with memory: the clone is saved there (its files), unless
#     the VM has NICs;
#   - refusals, each one line with the whole library unchanged and no
#     half-made clone: NEW exists (as a VM, as something else), bad names,
#     unknown source or tag, --linked without --snapshot, a running source
#     (a clone of a snapshot works), a saved source, another command at
#     work on the source, a full disk (tmpfs), Ctrl-C midway.
#
# Quick (15-30 s), no KVM: suite e2e.
# Exit: 0 pass, 1 fail, 77 skip (no qemu-img / qemu-io / python3).

set -u
umask 022
viv=${1:?usage: test_clones.sh VIVARIUM [BLK_HOLD]}
hold=${2:-}

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$viv" ] || { echo "FAIL: no vivarium binary at '$viv'"; exit 1; }
viv=$(realpath "$viv")
for p in qemu-img qemu-io python3; do
	command -v $p >/dev/null || skip "$p is not installed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-clone.XXXXXX")
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" "$work/ref" && chmod 700 "$XDG_RUNTIME_DIR"
vms=$XDG_DATA_HOME/vivarium/vms
holders=()
mnt=
cleanup() {
	local h
	for h in "${holders[@]}"; do kill "$h" 2>/dev/null; done
	[ -n "$mnt" ] && umount "$mnt" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

V_TIMEOUT=60
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# library: every entry of the library (hidden ones too) and every file's hash.
library() {
	(cd "$vms" && find . -mindepth 1 | sort && find . -type f | sort | xargs -r sha256sum)
}

# refuse DESC ARGS...: one line on stderr, non-zero, the library unchanged.
refuse() {
	local desc=$1 before
	shift
	before=$(library)
	v "$@"
	if [ "$rc" -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && [ -z "$out" ] &&
	   [ "$before" = "$(library)" ]; then
		ok "$desc (rc $rc: $err)"
	else
		bad "$desc: rc $rc, stdout '$out', stderr: $err"
	fi
}

# conf VM GROUP KEY: a value of its vm.conf.
conf() { sed -n "/^\[$2\]/,/^\[/s/^$3=//p" "$vms/$1/vm.conf"; }
# disk VM GROUP: the absolute path of a disk.
disk() {
	local p
	p=$(conf "$1" "$2" path)
	case $p in /*) echo "$p" ;; *) echo "$vms/$1/$p" ;; esac
}
# put VM GROUP PATTERN OFFSET LEN: qemu-io writes into the disk.
put() {
	qemu-io -f qcow2 -c "write -P $3 $4 $5" "$(disk "$1" "$2")" >/dev/null ||
		bad "qemu-io write -P $3 $4 $5 into $1's $2"
}
# ref NAME IMAGE: remember what IMAGE reads.
ref() {
	rm -f "$work/ref/$1.raw"
	qemu-img convert -O raw "$2" "$work/ref/$1.raw" || bad "ref $1: convert $2"
}
same() { qemu-img compare -q "$1" "$work/ref/$2.raw" 2>/dev/null; }
# frozen VM TAG: the snapshot's frozen image of disk0 (list --json).
frozen() {
	"$viv" snapshot list "$1" --json | python3 -c '
import json, sys
for s in json.load(sys.stdin)["snapshots"]:
    if s["tag"] == sys.argv[1]:
        print(next(d["image"] for d in s["disks"] if d["disk"] == sys.argv[2]))' "$2" "${3:-disk0}"
}
# backing IMAGE: its backing file as its header names it.
backing() { qemu-img info --output json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("backing-filename", ""))'; }
# clean VM: qemu-img check of every image in its folder.
clean() {
	local f bad_ones=""
	for f in "$vms/$1"/*.qcow2 "$vms/$1"/snapshots/*.qcow2; do
		[ -f "$f" ] || continue
		qemu-img check -q "$f" >/dev/null 2>&1 || bad_ones+=" $(basename "$f")"
	done
	[ -z "$bad_ones" ] || { echo "# qemu-img check failed:$bad_ones"; return 1; }
}
# mac UUID N: the address vm_mac_from_uuid() gives.
mac() {
	python3 -c 'import hashlib, sys
h = bytearray(hashlib.sha256(("%s/%s" % (sys.argv[1].lower(), sys.argv[2])).encode()).digest()[:6])
h[0] = (h[0] & 0xfc) | 2
print(":".join("%02x" % b for b in h))' "$1" "$2"
}
no_leftovers() { ! ls -A "$vms" | grep -q '^\.'; }

# hold_lock FILE: a process holding FILE's lock as a VM process holds
# vm.pid (write lock), or the folder's flock (FILE a directory).
hold_lock() {
	python3 -c '
import fcntl, os, sys, time
p = sys.argv[1]
if os.path.isdir(p):
    fd = os.open(p, os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX)
else:
    f = open(p, "r+"); f.write(str(os.getpid())); f.flush(); fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True); time.sleep(60)' "$1" >"$work/lock.out" &
	holders+=($!)
	for _ in $(seq 50); do grep -q locked "$work/lock.out" 2>/dev/null && break; sleep 0.1; done
}
unhold() {
	local h
	for h in "${holders[@]}"; do kill "$h" 2>/dev/null; wait "$h" 2>/dev/null; done
	holders=()
	rm -f "$work/lock.out"
}

# ---- the source: four disks, files in and out of its folder, NICs ----------
echo kernel >"$work/kernel"
echo iso >"$work/cd.iso"
qemu-img create -q -f qcow2 "$work/shared.qcow2" 16M
v create src --kernel "$work/kernel" --disk-size 64M --iso "$work/cd.iso" --nic none
check '[ "$rc" = 0 ]' "create src ($err)"
qemu-img create -q -f qcow2 "$vms/src/data.qcow2" 32M
qemu-img create -q -f raw "$vms/src/ro.img" 8M
qemu-io -f raw -c "write -P 0x5a 0 1M" "$vms/src/ro.img" >/dev/null
mkdir "$vms/src/boot" && echo initrd >"$vms/src/boot/initrd"
cat >>"$vms/src/vm.conf" <<EOF
initrd=boot/initrd
# the data disk
[disk1]
path=data.qcow2
format=qcow2
[disk2]
path=ro.img
format=raw
readonly=true
[disk3]
path=$work/shared.qcow2
format=qcow2
readonly=true
interface=ata
[nic0]
mac=52:54:00:12:34:56
[nic1]
mac=52:54:00:12:34:57
model=e1000
[extra]
kept=yes
EOF
# The initrd belongs to [direct-boot]: move the line there.
python3 - "$vms/src/vm.conf" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
lines.remove("initrd=boot/initrd")
lines.insert(lines.index("[direct-boot]") + 1, "initrd=boot/initrd")
open(sys.argv[1], "w").write("\n".join(lines))
PY
# The TPM's state as swtpm leaves it (tpm=on): its state file and lock.
mkdir -m 700 "$vms/src/tpm"
head -c 5000 /dev/urandom >"$vms/src/tpm/tpm2-00.permall"
: >"$vms/src/tpm/.lock"
v show src
check '[ "$rc" = 0 ] && echo "$out" | grep -q "^disk3: .*shared.qcow2"' "the source's vm.conf reads ($err)"
src_uuid=$(conf src vm uuid)

put src disk0 0x10 0 1M
v snapshot take src s0
put src disk0 0x11 1M 2M
put src disk1 0x21 0 1M
v snapshot take src s1
check '[ "$rc" = 0 ]' "take s0, s1 ($err)"
ref s1-disk0 "$(frozen src s1)"
ref s1-disk1 "$(frozen src s1 disk1)"
put src disk0 0x12 2M 2M
v snapshot take src s2
put src disk0 0x13 3M 1M
put src disk1 0x23 512K 1M
ref src-disk0 "$(disk src disk0)"
ref src-disk1 "$(disk src disk1)"
ref ro "$vms/src/ro.img"

# ---- full clone of the current state ------------------------------------------
before=$(cd "$vms/src" && find . -type f | sort | xargs sha256sum)
v clone src full
check '[ "$rc" = 0 ] && [ -z "$err" ] && [ -f "$vms/full/vm.conf" ] && no_leftovers' "clone src full: $out$err"
check '[ "$before" = "$(cd "$vms/src" && find . -type f | sort | xargs sha256sum)" ]' "the source is unchanged"
check 'same "$vms/full/disk.qcow2" src-disk0 && same "$vms/full/disk1.qcow2" src-disk1 &&
	same "$vms/full/disk2.img" ro' "the disks read what the source's read"
check '[ -z "$(backing "$vms/full/disk.qcow2")" ] && [ -z "$(backing "$vms/full/disk1.qcow2")" ] &&
	qemu-img info "$vms/full/disk2.img" | grep -q "file format: raw" && clean full' \
	"standalone images (no backing file; the raw read-only disk stays raw), qemu-img check clean"
check '[ "$(conf full disk0 path)" = disk.qcow2 ] && [ "$(conf full disk1 path)" = disk1.qcow2 ] &&
	[ "$(conf full disk2 path)" = disk2.img ] && [ "$(conf full disk2 format)" = raw ] &&
	[ "$(conf full disk2 readonly)" = true ] && [ "$(conf full disk3 path)" = "$work/shared.qcow2" ] &&
	[ "$(conf full disk3 interface)" = ata ] && [ "$(conf full cdrom path)" = "$work/cd.iso" ]' \
	"vm.conf: disks in the clone's folder, the outside read-only disk and the ISO where they are"
check 'cmp -s "$vms/full/tpm/tpm2-00.permall" "$vms/src/tpm/tpm2-00.permall" && [ ! -e "$vms/full/tpm/.lock" ] &&
	[ "$(stat -c %a "$vms/full/tpm")" = 700 ]' "the TPM's state is copied (tpm/, private; not swtpm's lock file)"
check '[ "$(conf full direct-boot initrd)" = boot/initrd ] && cmp -s "$vms/full/boot/initrd" "$vms/src/boot/initrd" &&
	[ "$(conf full direct-boot kernel)" = "$work/kernel" ]' "the initrd in the folder is copied; the kernel outside is named"
uuid=$(conf full vm uuid)
check '[ "$(conf full vm name)" = full ] && [ -n "$uuid" ] && [ "$uuid" != "$src_uuid" ] &&
	[ "$(conf full vm created)" != "$(conf src vm created)" ]' "name, a new UUID ($uuid), created now"
m0=$(mac "$uuid" 0)
m1=$(mac "$uuid" 1)
check '[ "$(conf full nic0 mac)" = "$m0" ] && [ "$(conf full nic1 mac)" = "$m1" ] && [ "$m0" != "$m1" ] &&
	[ "$(conf full nic1 model)" = e1000 ] && [ "$(conf src nic0 mac)" = 52:54:00:12:34:56 ]' \
	"new MAC addresses from the new UUID: $m0, $m1"
check '[ "$(conf full extra kept)" = yes ] && grep -q "^# the data disk" "$vms/full/vm.conf" &&
	[ "$(conf full clone source)" = src ] && [ "$(conf full clone source-uuid)" = "$src_uuid" ] &&
	[ "$(conf full clone linked)" = false ]' "unknown groups and comments kept; [clone] says where it came from"
v snapshot list full
check '[ "$out" = "VM '"'full'"' has no snapshots" ] && [ ! -e "$vms/full/snapshots" ] &&
	[ ! -e "$vms/full/saved.state" ]' "no snapshots, no saved state"
v list --json
check 'echo "$out" | grep -q "\"full\""' "list shows the clone"
v show full
check 'echo "$out" | grep -q "^clone of: src$"' "show says where it came from"
put full disk0 0x77 0 4M
check 'same "$(disk src disk0)" src-disk0 && same "$(frozen src s1)" s1-disk0' "writes into the clone do not reach the source"

# ---- from a snapshot: full, linked ----------------------------------------------
v clone src fs1 --snapshot s1
check '[ "$rc" = 0 ] && same "$vms/fs1/disk.qcow2" s1-disk0 && same "$vms/fs1/disk1.qcow2" s1-disk1 &&
	[ -z "$(backing "$vms/fs1/disk.qcow2")" ] && clean fs1 && [ "$(conf fs1 clone snapshot)" = s1 ]' \
	"clone --snapshot s1: the disks read the snapshot's, standalone: $out$err"
v clone src ln --snapshot s1 --linked
check '[ "$rc" = 0 ] && [ -z "$err" ] && no_leftovers' "clone --snapshot s1 --linked: $out$err"
f0=$(realpath "$(frozen src s1)")
f1=$(realpath "$(frozen src s1 disk1)")
chain=$(qemu-img info --backing-chain "$vms/ln/disk.qcow2" | sed -n 's/^image: //p' | xargs realpath)
check '[ "$(backing "$vms/ln/disk.qcow2")" = "$f0" ] && [ "$(backing "$vms/ln/disk1.qcow2")" = "$f1" ] &&
	[ "$(echo "$chain" | sed -n 2p)" = "$f0" ]' "the linked clone's disks are overlays on s1's frozen images, named absolutely"
check 'same "$vms/ln/disk.qcow2" s1-disk0 && same "$vms/ln/disk1.qcow2" s1-disk1 && clean ln && clean src' \
	"they read the snapshot; qemu-img check clean on every image"
check '[ "$(du -k "$vms/ln/disk.qcow2" | cut -f1)" -lt 1024 ] && [ "$(conf ln clone linked)" = true ] &&
	[ "$(conf ln clone snapshot-id)" = "$("$viv" snapshot list src --json | python3 -c "import json,sys; print([s[\"id\"] for s in json.load(sys.stdin)[\"snapshots\"] if s[\"tag\"] == \"s1\"][0])")" ]' \
	"small overlays; [clone] names the snapshot's id"
v show ln
check 'echo "$out" | grep -q "^clone of: src (snapshot s1, linked)$"' "show says it is linked"
put ln disk0 0x88 0 3M
check 'same "$(frozen src s1)" s1-disk0 && same "$(disk src disk0)" src-disk0 && ! same "$vms/ln/disk.qcow2" s1-disk0' \
	"writes into the linked clone stay there"
ref ln-disk0 "$vms/ln/disk.qcow2"

# ---- what the linked clone holds ----------------------------------------------------
refuse "snapshot delete of the linked clone's snapshot" snapshot delete src s1
check 'echo "$err" | grep -q "linked clone(s) ln: delete them first"' "the refusal names the clone"
refuse "delete of the linked clone's source" delete src --yes
check 'echo "$err" | grep -q "linked clone(s) ln"' "it names the clone"
# The chains are the truth; [clone] only speaks for a chain that cannot
# be read.
v clone src ln3 --snapshot s1 --linked
cp "$vms/ln3/disk.qcow2" "$work/ln3.qcow2"
printf 'QFI\373\0\0\0\3garbage' | dd of="$vms/ln3/disk.qcow2" conv=notrunc status=none
refuse "snapshot delete under a linked clone whose chain cannot be read" snapshot delete src s1
check 'echo "$err" | grep -q "linked clone(s) ln, ln3:"' "its [clone] group counts: $err"
cp "$work/ln3.qcow2" "$vms/ln3/disk.qcow2"
"$viv" img rebase -b "" "$vms/ln3/disk.qcow2" && "$viv" img rebase -b "" "$vms/ln3/disk1.qcow2"
check '[ -z "$(backing "$vms/ln3/disk.qcow2")" ] && same "$vms/ln3/disk.qcow2" s1-disk0' "ln3 made standalone (img rebase -b \"\")"
refuse "snapshot delete under the linked clone" snapshot delete src s1
check 'echo "$err" | grep -q "linked clone(s) ln:"' "a clone made standalone no longer counts, whatever its [clone] says"
v delete ln3 --yes
# Another VM reading the frozen image itself (a read-only disk by hand).
v create rov --kernel "$work/kernel"
printf '[disk0]\npath=%s\nformat=qcow2\nreadonly=true\n' "$(frozen src s1)" >>"$vms/rov/vm.conf"
refuse "snapshot delete of an image another VM has as its disk" snapshot delete src s1
check 'echo "$err" | grep -q "linked clone(s) ln, rov:"' "that VM is named too"
v delete rov --yes
if [ -n "$hold" ]; then
	# The clone "runs" (its disk held as a VM holds it): a delete of s0,
	# which would merge into s1's image under it, is refused untouched.
	coproc HOLD { "$hold" "$vms/ln/disk.qcow2"; }
	read -r -t 10 line <&"${HOLD[0]}"
	refuse "delete of a snapshot below a running linked clone's" snapshot delete src s0
	exec {HOLD[1]}>&-
	wait "$HOLD_PID" 2>/dev/null
else
	echo "# skipped the running linked clone case: no blk_hold given"
fi
v snapshot delete src s0
check '[ "$rc" = 0 ] && same "$vms/ln/disk.qcow2" ln-disk0 && same "$(frozen src s1)" s1-disk0 && clean src && clean ln' \
	"a snapshot below the clone's can go: the clone reads the same ($err)"
v snapshot delete src s2
check '[ "$rc" = 0 ] && same "$vms/ln/disk.qcow2" ln-disk0 && same "$(disk src disk0)" src-disk0' \
	"so can one the clone does not use ($err)"
# A linked clone of the linked clone depends on both.
v snapshot take ln l1
v clone ln ln2 --snapshot l1 --linked
check '[ "$rc" = 0 ] && same "$vms/ln2/disk.qcow2" ln-disk0' "a linked clone of a linked clone ($err)"
refuse "snapshot delete with two clones on it" snapshot delete src s1
check 'echo "$err" | grep -q "linked clone(s) ln, ln2:"' "both are named"
refuse "delete of the first clone" delete ln --yes
v delete ln2 --yes
v delete ln --yes
check '[ "$rc" = 0 ]' "the clones can be deleted ($err)"
v snapshot delete src s1
check '[ "$rc" = 0 ] && same "$(disk src disk0)" src-disk0' "then the snapshot can ($err)"

# ---- refusals -------------------------------------------------------------------------
v snapshot take src t
refuse "NEW exists" clone src full
refuse "NEW is the source" clone src src
mkdir "$vms/junk"
refuse "NEW is in the way (not a VM)" clone src junk
rmdir "$vms/junk"
refuse "a bad NEW" clone src "a b"
refuse "a hidden NEW" clone src .x
refuse "an unknown source" clone nosuch x
refuse "an unknown tag" clone src x --snapshot nope
refuse "a bad tag" clone src x --snapshot "a/b"
refuse "--linked without --snapshot" clone src x --linked
check 'echo "$err" | grep -q -- "--snapshot TAG"' "it says what to give"
v clone src x y
check '[ "$rc" = 2 ] && [ ! -e "$vms/x" ]' "three names: a usage error"
: >"$vms/src/saved.state"
refuse "a saved source (current state)" clone src x
v clone src sv --snapshot t
check '[ "$rc" = 0 ] && [ ! -e "$vms/sv/saved.state" ]' "a snapshot of a saved source can be cloned ($err)"
rm -f "$vms/src/saved.state"
hold_lock "$vms/src"
refuse "another snapshot or clone command at work on the source" clone src x --snapshot t
unhold
# A running source (its process holds vm.pid's lock; its disks are held
# as it holds them): its current state is refused, a snapshot is fine.
: >"$vms/src/vm.pid"
hold_lock "$vms/src/vm.pid"
refuse "a running source (current state)" clone src x
check 'echo "$err" | grep -q "is running: stop it, or clone one of its snapshots (--snapshot TAG)"' "it says what to do"
if [ -n "$hold" ]; then
	coproc HOLD { "$hold" "$(disk src disk0)" "$(disk src disk1)"; }
	read -r -t 10 line <&"${HOLD[0]}"
fi
v clone src rf --snapshot t
check '[ "$rc" = 0 ] && clean rf' "a full clone of a running source's snapshot ($err)"
v clone src rl --snapshot t --linked
check '[ "$rc" = 0 ] && clean rl' "a linked clone of a running source's snapshot ($err)"
if [ -n "$hold" ]; then
	exec {HOLD[1]}>&-
	wait "$HOLD_PID" 2>/dev/null
fi
unhold
rm -f "$vms/src/vm.pid"
v delete rl --yes

# ---- memory ------------------------------------------------------------------------------
v create m --kernel "$work/kernel" --disk-size 16M --nic none
v snapshot take m sm
id=$("$viv" snapshot list m --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["snapshots"][0]["id"])')
sed -i 's/"has_memory" : false/"has_memory" : true/' "$vms/m/snapshots/index.json"
head -c 4096 /dev/urandom >"$vms/m/snapshots/$id.state"
head -c 65536 /dev/urandom >"$vms/m/snapshots/$id.ram"
v clone m mc --snapshot sm
check '[ "$rc" = 0 ] && echo "$out" | grep -q "resumes the snapshot" &&
	cmp -s "$vms/mc/saved.state" "$vms/m/snapshots/$id.state" && cmp -s "$vms/mc/saved.ram" "$vms/m/snapshots/$id.ram"' \
	"a snapshot with memory: the clone is saved at it ($out$err)"
v list
check 'echo "$out" | grep -Eq "^mc +saved "' "list says saved"
cp "$vms/mc/saved.ram" "$work/ref/mc.ram"
v snapshot delete m sm
check '[ "$rc" = 0 ] && cmp -s "$vms/mc/saved.ram" "$work/ref/mc.ram"' \
	"the clone keeps its memory when the snapshot goes ($err)"
v snapshot take m sm
id=$("$viv" snapshot list m --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["snapshots"][0]["id"])')
sed -i 's/"has_memory" : false/"has_memory" : true/' "$vms/m/snapshots/index.json"
head -c 4096 /dev/urandom >"$vms/m/snapshots/$id.state"
head -c 65536 /dev/urandom >"$vms/m/snapshots/$id.ram"
printf '[nic0]\nmac=52:54:00:00:00:01\n' >>"$vms/m/vm.conf"
v clone m mn --snapshot sm --linked
check '[ "$rc" = 0 ] && [ ! -e "$vms/mn/saved.state" ] && [ ! -e "$vms/mn/saved.ram" ] &&
	echo "$out" | grep -q "boots from the snapshot'"'"'s disks"' "with a NIC, the memory stays behind: $out"

# ---- failures leave nothing ------------------------------------------------------------------
v create big --kernel "$work/kernel" --disk-size 512M
qemu-io -f qcow2 -c "write -P 0x42 0 256M" "$vms/big/disk.qcow2" >/dev/null
ref big "$vms/big/disk.qcow2"
before=$(library)
timeout --preserve-status -s INT 0.2 "$viv" clone big bc >/dev/null 2>"$work/err"
rc=$?
if [ "$rc" = 0 ]; then
	check 'same "$vms/bc/disk.qcow2" big' "the clone finished before Ctrl-C (fast machine): it is whole"
	v delete bc --yes
else
	check '[ "$rc" = 130 ] && [ "$(wc -l <"$work/err")" = 1 ] && [ "$before" = "$(library)" ]' \
		"Ctrl-C midway: exit 130, one line ($(cat "$work/err")), nothing left"
fi
(timeout -s KILL 0.2 "$viv" clone big bk; :) >/dev/null 2>&1
v list
check '! echo "$out" | grep -q "^bk " || [ -f "$vms/bk/vm.conf" ]' "kill -9 midway: no half-made VM is listed"
check 'same "$vms/big/disk.qcow2" big' "the source is intact"
rm -rf "$vms"/.bk.new-* "$vms/bk"
mnt=$work/small
mkdir -p "$mnt"
if mount -t tmpfs -o size=24m tmpfs "$mnt" 2>/dev/null; then
	(
		export XDG_DATA_HOME=$mnt
		"$viv" create f --kernel "$work/kernel" --disk-size 64M >/dev/null &&
			qemu-io -f qcow2 -c "write -P 0x66 0 14M" "$mnt/vivarium/vms/f/disk.qcow2" >/dev/null
		before=$(cd "$mnt" && find . | sort && find . -type f | sort | xargs sha256sum)
		"$viv" clone f f2 >"$work/out" 2>"$work/err" </dev/null
		echo "rc=$? same=$([ "$before" = "$(cd "$mnt" && find . | sort && find . -type f | sort | xargs sha256sum)" ] && echo yes)"
	) >"$work/full.out"
	check 'grep -q "rc=1 same=yes" "$work/full.out" && [ "$(wc -l <"$work/err")" = 1 ] &&
		grep -q "No space left" "$work/err"' "a full disk: one line ($(cat "$work/err")), nothing left"
	umount "$mnt" && mnt=
else
	echo "# skipped the full-disk case: cannot mount a tmpfs"
fi

# ---- the clones outlive their source --------------------------------------------------------
v delete src --yes
check '[ "$rc" = 0 ]' "with no linked clone left, the source can be deleted ($err)"
check 'same "$vms/fs1/disk.qcow2" s1-disk0 && same "$vms/full/disk1.qcow2" src-disk1 && clean full && clean fs1 &&
	[ -f "$vms/full/boot/initrd" ]' "full clones do not need their source"
v help
check 'echo "$out" | grep -q "^  clone "' "vivarium help lists clone"
v clone --help
check '[ "$rc" = 0 ] && echo "$out" | grep -q "usage: vivarium clone NAME NEW"' "clone --help"

echo "# $((total - errors))/$total passed"
[ "$errors" = 0 ]
