#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_vm_save_in_rig.sh VIVARIUM - a snapshot of a running Linux guest,
# reverted, and `vivarium save` of it, then `vivarium start` resumes it
# where it was.  One rig boot for both.
#
# First the snapshot: the guest formats its virtio disk (ext2, a file
# "base"), `snapshot take` while it runs, then it writes a file "after" to
# the disk and counts on; `snapshot revert`: the counter resumes from its
# value at the take, "after" is gone from the disk and "base" is there, the
# guest answers on its console and its kernel logs no complaint.
#
# The guest: the Debian kernel with the test initramfs built --count
# (tests/rig/mkguest-initramfs.sh: a process prints GUEST-COUNT=<n> once a
# second; console lines come back as GUEST-ECHO=; "dmesg-check" reports
# clocksource, soft-lockup, RCU-stall and hung-task complaints).  In the
# nested rig (or directly with hardware virtualization): start the VM,
# wait for GUEST-COUNT=5, save it (list says "saved"), start it again and
# check that the guest did not boot again (no GUEST-INIT in the new
# serial log), that its counter goes on from where it was, that it answers
# on its console, that the disk reads it keeps going across the save
# ("disk-busy": requests in flight at the save) go on after the resume
# (the restored transport's doorbells, ioeventfds and irqfds where KVM
# has them, must work), and that its kernel logged no complaint about
# time.
#
# With VIVARIUM_E2E_SAVE_NET=1, the network across both (the VM's NAT
# card, with a host forward of L1's 127.0.0.1:8080 to the guest's httpd on
# port 80; the guest's initramfs is built --net --count): at boot, after
# the revert and after the resume, L1 fetches the guest's page through the
# forward and the guest fetches a page of L1's httpd through NAT
# (10.0.2.2).  Not in the suite yet: with the guest's network up, its
# kernel triple-faulted at a take, a revert or a resume in most runs of
# 2026-12-08 (issue 11's note), where the same test without it did not.
#
# The VM has a TPM (--tpm on: swtpm, copied into L1; left out with a line
# when swtpm is not installed): the guest's built-in tpm_tis finds it, PCR
# 16 reads zero and /dev/hwrng gives the TPM's random bytes; the guest
# extends PCR 16 through /dev/tpm0 before the take (A) and after it (B);
# after the revert PCR 16 reads A again (but /dev/hwrng does not repeat
# the bytes it gave after the take: the restored TPM's generator is
# stirred with the host's entropy), and after the save and resume still A.
#
# Exit: 0 pass, 1 fail, 77 skip (no qemu-system-x86_64 or no kernel).

set -u
here=$(cd "$(dirname "$0")" && pwd)
rig=$here/../rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
viv=${1:-}
timeout_s=${VIVARIUM_E2E_TIMEOUT:-480}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

rig_test_setup "$viv"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-save.XXXXXX")
trap 'rm -rf "$work"' EXIT
with_net=${VIVARIUM_E2E_SAVE_NET:-0}
"$here/../rig/mkguest-initramfs.sh" $([ "$with_net" = 1 ] && echo --net) --count --disk "$work/guest.cpio.gz" ||
	fail "cannot build the guest initramfs"
qemu_img=$(command -v qemu-img) || skip "qemu-img is not installed (apt-get install qemu-utils): it checks the images"

# Runs where the VMM runs (L1, or this host).  $1: kernel, $2: initrd.
# The TPM's part needs swtpm (where the VMM runs: copied into L1).
swtpm=$(command -v swtpm || true)
with_tpm=1
if [ -z "$swtpm" ]; then
	with_tpm=0
	echo "# swtpm is not installed (apt-get install swtpm): the TPM's checks are left out"
fi
cat >"$work/test.sh" <<'EOF'
k=$1 i=$2 with_tpm=${3:-1} with_net=${4:-0}
export XDG_DATA_HOME=${WORK:-/tmp}/data XDG_RUNTIME_DIR=${WORK:-/tmp}/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
viv=${VIV:-vivarium}
dir=$XDG_DATA_HOME/vivarium/vms/demo
log=$dir/serial.log
# ms: milliseconds since boot (busybox date has no %N).
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
# wait_for TEXT SECONDS: until serial.log holds TEXT.
wait_for() {
	n=0
	until grep -q "$1" "$log" 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt $(($2 * 5)) ] && return 1
		sleep 0.2
	done
}
# count: the last GUEST-COUNT value in serial.log.
count() { tr -d '\r' <"$log" | sed -n 's/^GUEST-COUNT=\([0-9]*\) .*/\1/p' | tail -n1; }
say() { printf '%s\n' "$1" | $viv console demo >/dev/null 2>&1; }
# done_lines: serial.log's complete lines, \r removed (the line the
# guest is still writing, a character at a time, left out).
done_lines() {
	cp "$log" "${WORK:-/tmp}/serial.snap" 2>/dev/null || return 0
	if [ -n "$(tail -c1 "${WORK:-/tmp}/serial.snap" | tr -d '\n')" ]; then
		sed '$d' "${WORK:-/tmp}/serial.snap"
	else
		cat "${WORK:-/tmp}/serial.snap"
	fi | tr -d '\r'
}
# reply KEY COMMAND: say COMMAND, wait (30 s at most) for one more whole
# line starting KEY=, print the last such line.
reply() {
	n0=$(done_lines | grep -c "^$1=")
	say "$2"
	n=0
	while [ "$(done_lines | grep -c "^$1=")" -le "${n0:-0}" ] && [ $n -lt 150 ]; do
		n=$((n + 1)); sleep 0.2
	done
	done_lines | grep "^$1=" | tail -n1
}
# tpm LABEL: the guest's TPM as it answers now (the "tpm" console
# command's GUEST-TPM= line), printed as TPM-LABEL=...; tpm_extend LABEL:
# PCR 16 extended once from the guest, the response as TPM-LABEL-RSP=.
tpm() { echo "TPM-$1 $(reply GUEST-TPM tpm)"; }
tpm_extend() { echo "TPM-$1-RSP=$(reply GUEST-TPM-EXTEND tpm-extend | sed 's/^GUEST-TPM-EXTEND=//')"; }
# L1's page for the guest (L1's loopback starts down; the forward listens
# on it too).
if [ "$with_net" = 1 ]; then
	ip link set lo up 2>/dev/null
	mkdir -p "${WORK:-/tmp}/www" && echo VIVNET-L1-PAGE-OK >"${WORK:-/tmp}/www/page"
	httpd -p 127.0.0.1:8081 -h "${WORK:-/tmp}/www" || echo "NET-L1-HTTPD=fail"
fi
# net LABEL: L1 fetches the guest's page through the forward
# (NET-LABEL-FWD=ok|fail), and the guest L1's page through NAT
# (NET-LABEL-OUT=ok|fail).
net() {
	if timeout 30 wget -q -O - http://127.0.0.1:8080/ 2>"${WORK:-/tmp}/wget.err" | grep -q VIVNET-GUEST-PAGE-OK; then
		echo "NET-$1-FWD=ok"
	else
		echo "NET-$1-FWD=fail $(tr '\n' ' ' <"${WORK:-/tmp}/wget.err")"
		$viv show demo | grep -i -A3 nic
	fi
	echo "NET-$1-OUT=$(reply GUEST-NET-FETCH "net-fetch http://10.0.2.2:8081/page" | sed -n 's/^GUEST-NET-FETCH=\([a-z]*\).*/\1/p')"
}
$viv create demo --kernel "$k" --initrd "$i" --cpus 2 --memory 512M --disk-size 64M \
	$([ "$with_net" = 1 ] && echo --nic virtio,nat,hostfwd=tcp:127.0.0.1:8080-:80) \
	--tpm "$([ "$with_tpm" = 1 ] && echo on || echo off)" --append "console=ttyS0 quiet panic=-1" || exit 10
$viv start demo || exit 11
wait_for "GUEST-COUNT=5 " 300 || { echo "SAVE-FAIL never counted to 5"; tr -d '\r' <"$log"; exit 12; }

# The TPM (swtpm, through the guest's tpm_tis): fresh, then PCR 16
# extended once before the take and once after it.
[ "$with_net" = 1 ] && net BOOT
tpm START
tpm_extend A
tpm A
# The snapshot, with the disk.
say disk-format
wait_for "GUEST-DISK-FORMATTED" 60 && echo "SNAP-FORMAT=ok"
t0=$(ms)
$viv snapshot take demo s1; echo "SNAP-TAKE-RC=$? SNAP-TAKE-MS=$(($(ms) - t0))"
at_take=$(count); echo "SNAP-AT-TAKE=$at_take"
wait_for "GUEST-COUNT=$((at_take + 3)) " 60
say "disk-write after"
wait_for "GUEST-DISK-WROTE=after" 60 && echo "SNAP-WROTE=ok"
tpm_extend B
tpm B
say "disk-check after"
wait_for "GUEST-DISK-HAS=after:yes" 30 && echo "SNAP-HAS-BEFORE-REVERT=yes"
wait_for "GUEST-COUNT=$((at_take + 6)) " 60
before=$(count)
echo "SNAP-BEFORE-REVERT=$before"
mark=$(wc -l <"$log")
t0=$(ms)
$viv snapshot revert demo s1; echo "SNAP-REVERT-RC=$? SNAP-REVERT-MS=$(($(ms) - t0))"
# The first count after the revert: the first one that went back (the
# guest's counter only grows), printed after the mark.
n=0 first=
while [ $n -lt 300 ]; do
	first=$(tail -n +"$((mark + 1))" "$log" | tr -d '\r' |
		sed -n 's/^GUEST-COUNT=\([0-9]*\) .*/\1/p' | awk -v b="$before" '$1 < b { print; exit }')
	[ -n "$first" ] && break
	n=$((n + 1))
	sleep 0.2
done
echo "SNAP-FIRST-AFTER-REVERT=$first"
say "disk-check after"
say "disk-check base"
n=0
until tail -n +"$((mark + 1))" "$log" | grep -q "GUEST-DISK-HAS=base"; do
	n=$((n + 1)); [ $n -gt 150 ] && break; sleep 0.2
done
echo "SNAP-AFTER-REVERT=$(tail -n +"$((mark + 1))" "$log" | tr -d '\r' | sed -n 's/^GUEST-DISK-HAS=after:\(.*\)/\1/p' | tail -n1)"
echo "SNAP-BASE-REVERT=$(tail -n +"$((mark + 1))" "$log" | tr -d '\r' | sed -n 's/^GUEST-DISK-HAS=base:\(.*\)/\1/p' | tail -n1)"
say dmesg-check
n=0
until tail -n +"$((mark + 1))" "$log" | grep -q "GUEST-DMESG-DONE"; do
	n=$((n + 1)); [ $n -gt 150 ] && break; sleep 0.2
done
echo "SNAP-DMESG-BAD=$(tail -n +"$((mark + 1))" "$log" | tr -d '\r' | sed -n 's/^GUEST-DMESG-BAD=\([0-9]*\)/\1/p' | tail -n1)"
tpm REVERT
[ "$with_net" = 1 ] && net REVERT
echo "--- serial.log of the snapshot part"; tr -d '\r' <"$log" | grep -v '^GUEST-COUNT='
echo "--- vm.log of the snapshot part"; cat "$dir/vm.log"
echo "--- end of the snapshot part"
say disk-busy
# A count that shows rounds done (the counts from before the revert are
# in the log too: wait for this one by its text).
wait_for "GUEST-DISK-BUSY" 30 && wait_for " disk=[1-9]" 60 && echo "SAVE-DISK-BUSY=ok"
n=$(count)
wait_for "GUEST-COUNT=$((n + 3)) " 60
t0=$(ms)
$viv save demo; echo "SAVE-RC=$? SAVE-MS=$(($(ms) - t0))"
echo "SAVE-STATE=$($viv list | awk '$1 == "demo" { print $2 }')"
echo "SAVE-FILES=$(ls "$dir" | grep -c '^saved\.')"
du -k "$dir/saved.ram" "$dir/saved.state" | sed 's/^/SAVE-DU /'
last=$(tr -d '\r' <"$log" | sed -n 's/^GUEST-COUNT=\([0-9]*\) .*/\1/p' | tail -n1)
echo "SAVE-LAST-COUNT=$last"
echo "SAVE-LAST-MONO=$(tr -d '\r' <"$log" | sed -n 's/^GUEST-COUNT=[0-9]* mono=\([0-9.]*\).*/\1/p' | tail -n1)"
echo "SAVE-LAST-DISK=$(tr -d '\r' <"$log" | sed -n 's/^GUEST-COUNT=.* disk=\([0-9]*\).*/\1/p' | tail -n1)"
sleep 8	# the host's time moves on; the guest's must not jump with it
t0=$(ms)
$viv start demo; echo "RESUME-RC=$?"
wait_for "GUEST-COUNT=" 120 && echo "RESUME-COUNT-MS=$(($(ms) - t0))"
wait_for "GUEST-COUNT=$((last + 3)) " 60
printf 'hello-after-resume\n' | $viv console demo >/dev/null 2>&1
wait_for "GUEST-ECHO=hello-after-resume" 30 && echo "RESUME-ECHO=ok"
printf 'dmesg-check\n' | $viv console demo >/dev/null 2>&1
wait_for "GUEST-DMESG-DONE" 30
tpm RESUME
[ "$with_net" = 1 ] && net RESUME
echo "RESUME-STATE=$($viv list | awk '$1 == "demo" { print $2 }')"
echo "RESUME-FILES=$(ls "$dir" | grep -c '^saved\.')"
$viv stop demo --force
# Every image of the VM (the frozen one, the overlay): qemu-img check.
bad=0
for img in "$dir"/*.qcow2 "$dir"/snapshots/*.qcow2; do
	[ -e "$img" ] || continue
	qemu-img check -q "$img" >/dev/null 2>&1 || { bad=$((bad + 1)); echo "CHECK-BAD $img"; qemu-img check "$img"; }
done
echo "IMG-CHECK-BAD=$bad IMG-COUNT=$(ls "$dir"/*.qcow2 "$dir"/snapshots/*.qcow2 2>/dev/null | wc -l)"
echo "--- serial.log after the resume"; tr -d '\r' <"$log"
echo "--- vm.log"; cat "$dir/vm.log"
exit 0
EOF

direct=0
if [ "${VIVARIUM_E2E_RIG:-0}" != 1 ] && "$viv" doctor >/dev/null 2>&1; then
	direct=1
fi
if [ "$direct" = 1 ]; then
	echo "# host has hardware virtualization: running vivarium directly"
	WORK=$work VIV=$viv timeout -k 10 "$timeout_s" sh "$work/test.sh" "$kernel" "$work/guest.cpio.gz" "$with_tpm" "$with_net" \
		</dev/null 2>&1 | tee "$work/out"
else
	# The guest's vCPU triple-faulting is the nested rig's doing at times
	# (QEMU's L2 guests reset spuriously there too; seen once here, 2 s
	# after a resume that then passed every other check): such a run is
	# shown and the rig runs once more, saying so.
	echo "# running vivarium in the nested rig"
	"$rig" --retries 3 --again-on "triple fault" --timeout "$timeout_s" \
		--bin "$viv:/bin/vivarium" --bin "$qemu_img:/bin/qemu-img" \
		${swtpm:+--bin "$swtpm:/usr/bin/swtpm"} \
		--file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz" \
		--file "$work/test.sh:/rig/test.sh" \
		-- "sh /rig/test.sh /guest/vmlinuz /guest/initrd.cpio.gz $with_tpm $with_net" \
		</dev/null 2>&1 | tee "$work/out"
fi

out=$(rig_output "$work/out")
val() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$out" | tail -n1; }
errors=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); return 1; fi; }

at_take=$(val SNAP-AT-TAKE)
first_rv=$(val SNAP-FIRST-AFTER-REVERT)
check '[ "$(val SNAP-FORMAT)" = ok ] && [ "$(val SNAP-WROTE)" = ok ] && [ "$(val SNAP-HAS-BEFORE-REVERT)" = yes ]' \
	"the guest formatted its disk, and wrote and saw a file after the take"
check '[ "$(val SNAP-TAKE-RC)" = 0 ]' "snapshot take of the running VM ($(val SNAP-TAKE-MS) ms)"
check '[ "$(val SNAP-REVERT-RC)" = 0 ]' "snapshot revert of the running VM ($(val SNAP-REVERT-MS) ms)"
check '[ -n "$at_take" ] && [ -n "$first_rv" ] && [ "$first_rv" -ge "$at_take" ] && [ "$first_rv" -le $((at_take + 2)) ]' \
	"the counter resumes from its value at the take (${at_take:-?} at the take, $(val SNAP-BEFORE-REVERT) before the revert, ${first_rv:-?} first after)"
check '[ "$(val SNAP-AFTER-REVERT)" = no ] && [ "$(val SNAP-BASE-REVERT)" = yes ]' \
	"the file written after the take is gone from the disk, the one before is there ($(val SNAP-AFTER-REVERT), $(val SNAP-BASE-REVERT))"
for step in $([ "$with_net" = 1 ] && echo BOOT REVERT RESUME); do
	check '[ "$(val NET-$step-FWD)" = ok ] && [ "$(val NET-$step-OUT)" = ok ]' \
		"$step: L1 fetched the guest's page through the host forward ($(val NET-$step-FWD)), the guest L1's through NAT ($(val NET-$step-OUT))"
done
check '[ "$(val SNAP-DMESG-BAD)" = 0 ]' "no clocksource, soft-lockup, RCU-stall or hung-task complaint after the revert"
check '[ "$(val IMG-CHECK-BAD)" = 0 ] && [ "$(val IMG-COUNT)" -ge 2 ]' "qemu-img check is clean on every image ($(val IMG-COUNT) images)"
last=$(val SAVE-LAST-COUNT)
after=$(sed -n '/^--- serial.log after the resume/,/^--- vm.log/p' <<<"$out")
first=$(sed -n 's/^GUEST-COUNT=\([0-9]*\) .*/\1/p' <<<"$after" | head -n1)
check '[ "$(val SAVE-RC)" = 0 ]' "vivarium save succeeded ($(val SAVE-MS) ms)"
check '[ "$(val SAVE-STATE)" = saved ] && [ "$(val SAVE-FILES)" = 2 ]' "list says saved; saved.state and saved.ram are there"
check '[ "$(val RESUME-RC)" = 0 ]' "vivarium start resumed it (first count after $(val RESUME-COUNT-MS) ms)"
check '! grep -q GUEST-INIT <<<"$after"' "the guest did not boot again" ||
	grep -n -B8 -A3 GUEST-INIT <<<"$after" | grep -v "GUEST-COUNT=" | sed 's/^/# /' | head -n 40
check '[ -n "$last" ] && [ -n "$first" ] && [ "$first" -ge "$last" ] && [ "$first" -le $((last + 2)) ]' \
	"its counter goes on from the saved value (saved at ${last:-?}, first after resume ${first:-?})"
mono0=$(val SAVE-LAST-MONO)
mono1=$(sed -n 's/^GUEST-COUNT=[0-9]* mono=\([0-9.]*\).*/\1/p' <<<"$after" | head -n1)
# The last count can come up to a second before the save, and the first
# after the resume up to a second and a loaded rig's scheduling after it: on
# a loaded CI machine two counts without a save in between have been 3.9 s
# apart in guest time (5.6 s across the save).  A guest clock that followed
# the host's would jump by the 8 s the host waits plus the resume's time:
# the bound is those 8 s.
check 'awk -v a="${mono0:-0}" -v b="${mono1:-0}" "BEGIN { exit !(b > a && b - a < 8) }"' \
	"guest time went on from the save, not from the host's clock (uptime ${mono0:-?} s at the save, ${mono1:-?} s at the first count after; the host waited 8 s)"
check '[ "$(val RESUME-ECHO)" = ok ]' "it answers on its serial console after the resume"
disk0=$(val SAVE-LAST-DISK)
disk1=$(sed -n 's/^GUEST-COUNT=.* disk=\([0-9]*\).*/\1/p' <<<"$after" | tail -n1)
check '[ "$(val SAVE-DISK-BUSY)" = ok ] && [ -n "$disk0" ] && [ -n "$disk1" ] && [ "$disk1" -gt "$disk0" ]' \
	"its disk reads go on after the resume (${disk0:-?} rounds at the save, ${disk1:-?} at the last count after)"
check '! grep -q GUEST-DISK-ERROR <<<"$out"' "no disk read failed in the guest"
check '[ "$(sed -n "s/^GUEST-DMESG-BAD=\([0-9]*\)/\1/p" <<<"$after" | tail -n1)" = 0 ]' \
	"no clocksource, soft-lockup, RCU-stall or hung-task complaint in its kernel log"
check '[ "$(val RESUME-STATE)" = running ] && [ "$(val RESUME-FILES)" = 0 ]' "running; the saved state was consumed"
if [ "$with_tpm" = 1 ]; then
	# PCR 16 after each extend with 32 x 0x5a: SHA-256(PCR || digest).
	pcr_a=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes(32) + b"\x5a" * 32).hexdigest())')
	pcr_b=$(python3 -c "import hashlib; print(hashlib.sha256(bytes.fromhex('$pcr_a') + b'\x5a' * 32).hexdigest())")
	tpmv() { grep -a "^TPM-$1 " <<<"$out" | tail -n1 | sed -n "s/.*\<$2=\([^ ]*\).*/\1/p" | tr 'A-F' 'a-f'; }
	rng=$(tpmv START rng)
	check '[ "$(tpmv START version)" = 2 ] && [ "$(tpmv START pcr16)" = "$(printf "%064d" 0)" ] &&
	       [ ${#rng} = 64 ] && [ "$rng" != "$(printf "%064d" 0)" ]' \
		"the guest's tpm_tis drives a TPM 2.0: PCR 16 reads zero, /dev/hwrng gives TPM random bytes ($(grep -a '^TPM-START ' <<<"$out" | tail -n1))"
	rsp=$(val TPM-A-RSP)
	check '[ "${rsp:0:20}" = 80020000001300000000 ]' "the guest's TPM2_PCR_Extend through /dev/tpm0 succeeded (response ${rsp:-none})"
	check '[ "$(tpmv A pcr16)" = "$pcr_a" ]' "PCR 16 then reads SHA-256(0 || digest) ($(tpmv A pcr16))"
	check '[ "$(tpmv B pcr16)" = "$pcr_b" ]' "extended again after the take: $(tpmv B pcr16)"
	check '[ "$(tpmv REVERT pcr16)" = "$pcr_a" ]' "the revert brought the TPM back to the take: PCR 16 $(tpmv REVERT pcr16)"
	check '[ -n "$(tpmv REVERT rng)" ] && [ "$(tpmv REVERT rng)" != "$(tpmv B rng)" ]' \
		"but not its random number generator's output: the first bytes after the revert ($(tpmv REVERT rng)) differ from those after the take ($(tpmv B rng))"
	check '[ "$(tpmv RESUME pcr16)" = "$pcr_a" ]' "save and resume kept the TPM's state: PCR 16 $(tpmv RESUME pcr16)"
fi
grep -a 'SAVE-DU\|saved:' <<<"$out" | sed 's/^/# /'
[ "$errors" -eq 0 ] || { echo "FAIL: $errors checks failed"; exit 1; }
echo "PASS"
