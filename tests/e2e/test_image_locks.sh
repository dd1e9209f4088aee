#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_image_locks.sh VIVARIUM BLK_HOLD - image locks against QEMU's: both
# speak QEMU's byte-range protocol (vmm-core/block/block.h, "Image locks"),
# with QEMU itself as the oracle.  For a raw and a qcow2 disk held writable
# by a QEMU VM (qemu-system-x86_64 -S, TCG) and then by vivarium (BLK_HOLD:
# the block layer opening images as a VM does), the same probes must get
# the same answers: qemu-img info (-U), qemu-img check, qemu-io write,
# qemu-io -r read, a vivarium writer, reader, `img check`, `img info`.  On
# top: qemu-io may not write, `img info` and info -U read, a second writer
# is refused with one line; only bytes 100-103/200-203 are locked (no
# whole-file lock); an ISO in vivarium's CD-ROM opens in QEMU's and the
# other way round.  Then the same with a real `vivarium run` (the tiny
# guest, tests/e2e/mktinyguest.sh) when /dev/kvm can be used.
#
# About 15 s: suite 'unit'.  Exit: 0 pass, 1 fail, 77 skip (no qemu-img,
# qemu-io or qemu-system-x86_64).

set -u

viv=${1:-}
hold=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIP: $*"; exit 77; }

[ -x "$viv" ] && [ -x "$hold" ] || { echo "FAIL: usage: $0 VIVARIUM BLK_HOLD"; exit 1; }
viv=$(realpath "$viv"); hold=$(realpath "$hold")
for p in qemu-img qemu-io qemu-system-x86_64; do
	command -v $p >/dev/null || skip "$p is not installed (apt-get install qemu-utils qemu-system-x86)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-locks.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

fails=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# The lock ranges on FILE in /proc/locks: "100-101 201 203"; "" if none.
locks_of() {
	local ino
	ino=$(stat -c %i "$1")
	awk -v ino="$ino" '{ split($6, a, ":"); if (a[3] == ino)
		print ($7 == $8 ? $7 : $7 "-" $8), $2 }' /proc/locks |
		sort -n | awk '{ printf "%s%s", sep, $1; sep = " "; if ($2 != "OFDLCK") printf "(%s)", $2 }'
}

# start_holder FILE CMD...: run CMD in the background (its pid in $holder)
# and wait until FILE's locks change.
holder=
start_holder() {
	local file=$1 before
	shift
	before=$(locks_of "$file")
	"$@" </dev/null >"$work/holder.out" 2>&1 &
	holder=$!
	pids+=("$holder")
	for _ in $(seq 100); do
		[ "$(locks_of "$file")" != "$before" ] && return 0
		kill -0 "$holder" 2>/dev/null || break
		sleep 0.1
	done
	fail "holder '$*' did not lock $file: $(cat "$work/holder.out")"
	return 1
}
stop_holder() {
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	holder=
}
# blk_hold in the background needs an open stdin: a FIFO we keep open.
viv_hold() {	# viv_hold FILE [--ro] IMAGE...: vivarium holds IMAGE
	local file=$1
	shift
	rm -f "$work/hold.in"
	mkfifo "$work/hold.in"
	"$hold" "$@" <"$work/hold.in" >"$work/holder.out" 2>&1 &
	holder=$!
	pids+=("$holder")
	exec {hold_fd}>"$work/hold.in"
	for _ in $(seq 100); do
		grep -q held "$work/holder.out" 2>/dev/null && return 0
		kill -0 "$holder" 2>/dev/null || break
		sleep 0.05
	done
	fail "blk_hold $*: $(cat "$work/holder.out")"
	return 1
}
viv_release() {
	exec {hold_fd}>&-
	wait "$holder" 2>/dev/null
	holder=
}
qemu_vm() {	# qemu_vm -drive SPEC...: a QEMU VM, stopped (-S), no KVM; only in the
		# background: its exec makes $! QEMU's pid
	exec qemu-system-x86_64 -nodefaults -display none -S -machine accel=tcg \
		-m 32 "$@"
}

# outcome CMD...: "ok" or "refused", and the command's output in $work/last.
outcome() {
	if "$@" </dev/null >"$work/last" 2>&1; then echo ok; else echo refused; fi
}

qemu-img create -q -f raw disk.raw 16M
qemu-img create -q -f qcow2 disk.qcow2 16M
head -c 4M /dev/urandom >cd.iso

# ---- one writer: QEMU as the oracle, then vivarium --------------------------
probe_names=("qemu-img info" "qemu-img info -U" "qemu-img check"
	     "qemu-io write" "qemu-io -r read" "vivarium writer"
	     "vivarium reader" "vivarium img check" "vivarium img info")
probes() {	# probes IMG FMT: one word per probe
	local img=$1 f=$2
	echo "$(outcome qemu-img info "$img")" \
	     "$(outcome qemu-img info -U "$img")" \
	     "$([ "$f" = qcow2 ] && outcome qemu-img check "$img" || echo n/a)" \
	     "$(outcome qemu-io -f "$f" -c 'write 0 512' "$img")" \
	     "$(outcome qemu-io -f "$f" -r -c 'read 0 512' "$img")" \
	     "$(outcome "$hold" "$img")" \
	     "$(outcome "$hold" --ro "$img")" \
	     "$(outcome "$viv" img check "$img")" \
	     "$(outcome "$viv" img info "$img")"
}
for f in raw qcow2; do
	img=disk.$f
	start_holder "$img" qemu_vm -drive "file=$img,format=$f,if=virtio" || continue
	oracle=($(probes "$img" "$f"))
	"$hold" "$img" </dev/null >"$work/err" 2>&1
	if [ "$(wc -l <"$work/err")" = 1 ] && grep -q "in use by another process" "$work/err"; then
		pass "$f: QEMU VM holds it: vivarium refuses to write, one line: $(cat "$work/err")"
	else
		fail "$f: QEMU VM holds it: a vivarium writer said: $(cat "$work/err")"
	fi
	stop_holder

	viv_hold "$img" "$img" || continue
	want="100-101 201 203"
	[ $f = qcow2 ] && want="100-101 103 201 203"
	got=$(locks_of "$img")
	[ "$got" = "$want" ] && pass "$f: vivarium writer locks bytes $got only (no whole-file lock)" ||
		fail "$f: vivarium writer's locks: '$got', want '$want'"
	ours=($(probes "$img" "$f"))
	for i in "${!probe_names[@]}"; do
		[ "${ours[$i]}" = "${oracle[$i]}" ] &&
			pass "$f: ${probe_names[$i]}: ${ours[$i]}, as against a QEMU VM" ||
			fail "$f: ${probe_names[$i]}: ${ours[$i]} against vivarium, ${oracle[$i]} against a QEMU VM"
	done
	[ "${ours[1]}" = ok ] || fail "$f: qemu-img info -U cannot read a vivarium VM's disk"
	[ "${ours[3]}" = refused ] || fail "$f: qemu-io wrote to a vivarium VM's disk"
	[ "${ours[8]}" = ok ] || fail "$f: vivarium img info cannot read a VM's disk"
	[ $f = raw ] && { [ "${ours[0]}" = ok ] || fail "raw: qemu-img info cannot read a vivarium VM's disk"; }
	if [ "${ours[5]}" = refused ]; then
		"$hold" "$img" </dev/null >"$work/err" 2>&1
		[ "$(wc -l <"$work/err")" = 1 ] &&
			pass "$f: a second vivarium writer: $(cat "$work/err")" ||
			fail "$f: a second vivarium writer said more than one line: $(cat "$work/err")"
	else
		fail "$f: a second vivarium writer was let in"
	fi
	viv_release
	[ -z "$(locks_of "$img")" ] || fail "$f: locks left after vivarium closed: $(locks_of "$img")"
done

# ---- a CD-ROM: readers share, both ways ------------------------------------
cdrom="file=cd.iso,format=raw,media=cdrom,readonly=on"
if viv_hold cd.iso --ro cd.iso; then
	got=$(locks_of cd.iso)
	[ "$got" = "100 201 203" ] && pass "cdrom: vivarium reader locks bytes $got only" ||
		fail "cdrom: vivarium reader's locks: '$got', want '100 201 203'"
	timeout 3 qemu-system-x86_64 -nodefaults -display none -S -machine accel=tcg \
		-m 32 -drive "$cdrom" >"$work/err" 2>&1
	[ $? = 124 ] && pass "cdrom: QEMU opens the ISO vivarium has in its drive" ||
		fail "cdrom: QEMU could not open vivarium's ISO: $(cat "$work/err")"
	[ "$(outcome "$hold" --ro cd.iso)" = ok ] && pass "cdrom: a second vivarium reader shares it" ||
		fail "cdrom: a second vivarium reader: $(cat "$work/last")"
	[ "$(outcome qemu-img convert -O raw cd.iso copy1.raw)" = ok ] &&
		pass "cdrom: qemu-img convert reads it" || fail "cdrom: qemu-img convert: $(cat "$work/last")"
	[ "$(outcome qemu-io -f raw -c 'write 0 512' cd.iso)" = refused ] &&
		pass "cdrom: qemu-io may not write to it" || fail "cdrom: qemu-io wrote to vivarium's ISO"
	viv_release
fi
if start_holder cd.iso qemu_vm -drive "$cdrom"; then
	[ "$(outcome "$hold" --ro cd.iso)" = ok ] && pass "cdrom: vivarium opens the ISO QEMU has in its drive" ||
		fail "cdrom: vivarium could not open QEMU's ISO: $(cat "$work/last")"
	[ "$(outcome "$viv" img convert -O raw cd.iso copy2.raw)" = ok ] &&
		pass "cdrom: vivarium img convert reads it" || fail "cdrom: img convert: $(cat "$work/last")"
	[ "$(outcome "$hold" cd.iso)" = refused ] && pass "cdrom: a vivarium writer is refused: $(cat "$work/last")" ||
		fail "cdrom: a vivarium writer opened QEMU's ISO"
	stop_holder
fi

# ---- the same with a running vivarium VM (needs /dev/kvm) -------------------
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "skip: the running-VM part: /dev/kvm is not usable here"
elif ! "$here/mktinyguest.sh" "$work/tiny.bzImage" >"$work/err" 2>&1; then
	echo "skip: the running-VM part: cannot build the tiny guest: $(cat "$work/err")"
else
	start_holder cd.iso "$viv" run --kernel "$work/tiny.bzImage" --memory 64M \
		--display none --serial "file:$work/serial.log" \
		--disk disk.qcow2 --disk disk.raw,if=ata --cdrom cd.iso
	for _ in $(seq 50); do grep -q "TINY-GUEST: ready" "$work/serial.log" 2>/dev/null && break; sleep 0.1; done
	got="$(locks_of disk.qcow2) | $(locks_of disk.raw) | $(locks_of cd.iso)"
	want="100-101 103 201 203 | 100-101 201 203 | 100 201 203"
	[ "$got" = "$want" ] && pass "VM: vivarium run locks qcow2, raw, ISO as: $got" ||
		fail "VM: vivarium run's locks: '$got', want '$want'"
	[ "$(outcome qemu-img info disk.raw)" = ok ] && pass "VM: qemu-img info reads its raw disk" ||
		fail "VM: qemu-img info disk.raw: $(cat "$work/last")"
	[ "$(outcome qemu-img info -U disk.qcow2)" = ok ] && pass "VM: qemu-img info -U reads its qcow2 disk" ||
		fail "VM: qemu-img info -U disk.qcow2: $(cat "$work/last")"
	[ "$(outcome qemu-io -f qcow2 -c 'write 0 512' disk.qcow2)" = refused ] &&
		pass "VM: qemu-io may not write: $(grep -m1 lock "$work/last")" || fail "VM: qemu-io wrote to its disk"
	timeout 3 qemu-system-x86_64 -nodefaults -display none -S -machine accel=tcg \
		-m 32 -drive "$cdrom" >"$work/err" 2>&1
	[ $? = 124 ] && pass "VM: QEMU opens the ISO in its CD-ROM" ||
		fail "VM: QEMU could not open its ISO: $(cat "$work/err")"
	timeout 10 "$viv" run --kernel "$work/tiny.bzImage" --memory 64M --display none \
		--disk disk.raw >"$work/err" 2>&1 </dev/null
	[ $? = 1 ] && [ "$(wc -l <"$work/err")" = 1 ] && pass "VM: a second VM on its disk: $(cat "$work/err")" ||
		fail "VM: a second VM on its disk: $(cat "$work/err")"
	stop_holder
fi

[ "$fails" = 0 ] && { echo "PASS"; exit 0; }
echo "$fails failure(s)"
exit 1
