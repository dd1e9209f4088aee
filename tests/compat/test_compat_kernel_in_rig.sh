#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_compat_kernel_in_rig.sh VIVARIUM - the Debian kernel's boot log in
# vivarium, compared with QEMU's in the same rig run.
#
# One rig boot (L1 with both vivarium and QEMU, 6 GiB: QEMU allocates a
# 4 GiB guest's RAM up front, which L1's overcommit refuses below that).  Each case boots the
# Debian kernel (linux-image-amd64, /boot/vmlinuz-*) directly with the
# busybox test initramfs (tests/rig/mkguest-initramfs.sh: it reports CPUs,
# memory and PCI devices, then powers off) and `loglevel=7`, first in
# vivarium (`--cpu-model host`, the default), then in QEMU/KVM
# (`-cpu host`, split irqchip):
#   1 vCPU 512 MiB, 2 vCPUs 512 MiB, 4 vCPUs 4 GiB (RAM above 4 GiB).
# A case is green when the guest reaches /init with the vCPUs and memory
# asked for, and vivarium's log has no line matching WARNING, BUG, Oops,
# Call Trace, ACPI Error, ACPI BIOS Error, firmware bug, clocksource ...
# unstable, resource conflict or can't claim that QEMU's log of the same
# case lacks (timestamps and addresses aside).  A case with such a line
# runs once more (both VMMs, a second rig boot: the loaded rig's TSC
# watchdog says "unstable" now and then, for either VMM) and the second
# run is judged.  A failing case prints both lists side by side.  The table at the end gives each case's time to
# /init (the guest's uptime) in both.
#
# Exit: 0 pass, 1 fail, 77 skip (no qemu-system-x86_64 or guest kernel).
set -u
here=$(cd "$(dirname "$0")" && pwd)
rig=$here/../rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
viv=${1:-}
timeout_s=${VIVARIUM_E2E_TIMEOUT:-900}

fail() { echo "FAIL: $*"; exit 1; }

rig_test_setup "$viv"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-compat.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/../rig/mkguest-initramfs.sh" "$work/guest.cpio.gz" || fail "cannot build the guest initramfs"

# The cases: vCPUs and memory (MiB).
cases="1:512 2:512 4:4096"

# Runs in L1: every case in vivarium, then in QEMU; each log between
# "=== CASE vmm cpus mib" and "=== END rc".
cat >"$work/test.sh" <<'EOF'
k=$1 i=$2
shift 2
app="console=ttyS0 loglevel=7 panic=-1"
for c in "$@"; do
	n=${c%%:*} mib=${c#*:}
	for vmm in vivarium qemu; do
		echo "=== CASE $vmm $n $mib"
		if [ $vmm = vivarium ]; then
			timeout 300 vivarium run --kernel "$k" --initrd "$i" --append "$app" \
				--cpus "$n" --memory "${mib}M" --serial stdio --display none \
				</dev/null >/tmp/case.log 2>&1
		else
			timeout 300 qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split \
				-cpu host -m "$mib" -smp "$n" -kernel "$k" -initrd "$i" \
				-append "$app" -nographic -no-reboot </dev/null >/tmp/case.log 2>&1
		fi
		rc=$?
		tr -d '\r' </tmp/case.log
		echo "=== END $rc"
	done
done
EOF

# rig_run CASES...: one rig run of those cases, appended to out.txt.
rig_run() {
	echo "# running vivarium and QEMU in the nested rig: $*"
	"$rig" --retries 2 --timeout "$timeout_s" --mem 6144 --qemu --bin "$viv:/bin/vivarium" \
		--file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz" \
		--file "$work/test.sh:/rig/test.sh" \
		-- "sh /rig/test.sh /guest/vmlinuz /guest/initrd.cpio.gz $*" \
		</dev/null >"$work/out" 2>&1
	rig_rc=$?
	rig_output "$work/out" >"$work/out.txt"
}
# shellcheck disable=SC2086
rig_run $cases

# case_log VMM N MIB: that case's console log.
case_log() {
	awk -v want="=== CASE $1 $2 $3" '$0 == want { on = 1; next } /^=== END / { on = 0 } on' "$work/out.txt"
}
case_rc() {
	awk -v want="=== CASE $1 $2 $3" '$0 == want { on = 1; next } on && /^=== END / { print $3; exit }' "$work/out.txt"
}
bad='WARNING|BUG|Oops|Call Trace|ACPI Error|ACPI BIOS Error|firmware bug|clocksource.*unstable|resource conflict|can.t claim'
# The warnings of a log, each once, without timestamps, addresses or numbers
# that differ between two boots of the same kernel.
warnings() {
	grep -aiE "$bad" | sed -E 's/^\[ *[0-9.]+\] *//; s/0x[0-9a-f]+/0x…/g; s/\b[0-9a-f]{8,16}\b/…/g; s/[0-9]+\.[0-9]+ ?(s|ms)\b/…/g' | LC_ALL=C sort -u
}

grep -aq "^=== CASE" "$work/out.txt" || { cat "$work/out.txt"; fail "the rig ran no case (rig status $rig_rc)"; }
# A warning only vivarium's guest printed may be the loaded rig's (the TSC
# watchdog's verdict under TCG comes and goes): such cases run once more,
# both VMMs, and that run is the one judged; the first run's extra lines
# are printed.
again=
for c in $cases; do
	n=${c%%:*} mib=${c#*:}
	extra=$(LC_ALL=C comm -23 <(case_log vivarium "$n" "$mib" | warnings) <(case_log qemu "$n" "$mib" | warnings))
	[ -n "$extra" ] || continue
	echo "# $n vCPU(s), $mib MiB: only in vivarium's log in the first run, run again: $(echo "$extra" | tr '\n' ';')"
	again="$again $c"
done
if [ -n "$again" ]; then
	cp "$work/out.txt" "$work/first.txt"
	# shellcheck disable=SC2086
	rig_run $again
	# The cases not run again keep their first run's logs.
	for c in $cases; do
		case " $again " in *" $c "*) continue ;; esac
		n=${c%%:*} mib=${c#*:}
		awk -v v="=== CASE vivarium $n $mib" -v q="=== CASE qemu $n $mib" \
			'$0 == v || $0 == q { on = 1 } on { print } on && /^=== END / { on = 0 }' \
			"$work/first.txt" >>"$work/out.txt"
	done
fi
errors=0
check() {
	if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); fi
}
table="| case | vivarium: /init at | QEMU: /init at | vivarium's warnings | QEMU's warnings |\n| --- | --- | --- | --- | --- |\n"
for c in $cases; do
	n=${c%%:*} mib=${c#*:}
	case_log vivarium "$n" "$mib" >"$work/v.log"
	case_log qemu "$n" "$mib" >"$work/q.log"
	warnings <"$work/v.log" >"$work/v.warn"
	warnings <"$work/q.log" >"$work/q.warn"
	vinit=$(grep -ao 'GUEST-INIT uptime=[0-9.]*' "$work/v.log" | tail -n1 | cut -d= -f2)
	qinit=$(grep -ao 'GUEST-INIT uptime=[0-9.]*' "$work/q.log" | tail -n1 | cut -d= -f2)
	vcpus=$(grep -ao 'GUEST-CPUS=[0-9]*' "$work/v.log" | tail -n1 | cut -d= -f2)
	vmem=$(grep -ao 'GUEST-MEM-KB=[0-9]*' "$work/v.log" | tail -n1 | cut -d= -f2)
	qmem=$(grep -ao 'GUEST-MEM-KB=[0-9]*' "$work/q.log" | tail -n1 | cut -d= -f2)
	name="$n vCPU(s), $mib MiB"
	for vmm in vivarium qemu; do
		[ "$(case_rc $vmm "$n" "$mib")" = 0 ] && continue
		echo "# $name: $vmm exited $(case_rc $vmm "$n" "$mib"); its last lines:"
		case_log $vmm "$n" "$mib" | tail -n 15 | sed 's/^/#   /'
	done
	check '[ -n "$vinit" ] && [ "$(case_rc vivarium "$n" "$mib")" = 0 ]' \
		"$name: the guest reached /init and powered off in vivarium (exit $(case_rc vivarium "$n" "$mib"))"
	check '[ "${vcpus:-0}" = "$n" ]' "$name: the guest sees $n CPU(s) (${vcpus:-none})"
	# MemTotal: what the kernel keeps for itself differs a little between
	# the two e820 maps; within 2 % of QEMU's.
	check '[ -n "$vmem" ] && [ -n "$qmem" ] && [ $((vmem * 100 / qmem)) -ge 98 ] && [ $((vmem * 100 / qmem)) -le 102 ]' \
		"$name: MemTotal ${vmem:-?} kB in vivarium, ${qmem:-?} kB in QEMU"
	extra=$(LC_ALL=C comm -23 "$work/v.warn" "$work/q.warn")
	if [ -n "$extra" ]; then
		echo "# $name: vivarium's warnings | QEMU's"
		paste -d'|' "$work/v.warn" "$work/q.warn" | sed 's/^/#   /'
	fi
	check '[ -z "$extra" ]' "$name: no warning in vivarium's log that QEMU's lacks$( [ -n "$extra" ] && printf ' (%s)' "$(echo "$extra" | tr '\n' ';')")"
	table="$table| $name | ${vinit:-–} s | ${qinit:-–} s | $(grep -c . "$work/v.warn") | $(grep -c . "$work/q.warn") |\n"
done
printf '%b' "$table"
echo "# warnings both printed (the rig's emulation, not vivarium):"
for c in $cases; do
	n=${c%%:*} mib=${c#*:}
	case_log vivarium "$n" "$mib" | warnings >"$work/v.warn"
	case_log qemu "$n" "$mib" | warnings >"$work/q.warn"
	LC_ALL=C comm -12 "$work/v.warn" "$work/q.warn" | sed "s/^/#   $n\/$mib: /"
done
[ "$errors" -eq 0 ] || { echo "FAIL: $errors checks failed"; exit 1; }
echo "PASS"
