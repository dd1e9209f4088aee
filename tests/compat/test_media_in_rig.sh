#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_media_in_rig.sh VIVARIUM - firmware-level media that this host's
# /dev/kvm cannot run (an instruction emulator: OVMF and memtest86+ stop at
# their first x87 instruction, ISOLINUX at a protected-mode IRET) booted in
# the nested rig, where L2 has hardware (AMD-V) semantics, by vivarium and
# by QEMU in the same rig run (issues 17 and 18).
#
# Cases (one L1 boot; each case in vivarium, then in QEMU):
#   isolinux        an installer-style ISO (tests/images/mk-isolinux-iso.sh)
#                   booted by SeaBIOS from the CD-ROM: ISOLINUX's prompt,
#                   then memtest86+ loaded from the CD starts and sizes RAM.
#                   (QEMU's run of it only with VIVARIUM_MEDIA_QEMU=all.)
#   memtest-kernel  Debian's memtest86+ (/boot/memtest86+x64.bin) with
#                   --kernel (QEMU: -kernel), 2 vCPUs, 256 MiB: its screen
#                   on COM1 shows the RAM and CPUs, and its tests #0 and #1
#                   complete without an error.
#   installer       the Debian 12 installer (debian-installer-12-netboot-amd64,
#                   its text kernel and initrd.gz) with 1 GiB to its first
#                   screen, "Select a language", on COM1; the kernel warnings
#                   only vivarium's boot printed are a failure.  QEMU's run
#                   (~160 s against vivarium's ~80 s) only with
#                   VIVARIUM_MEDIA_QEMU=all; otherwise vivarium's warnings
#                   are compared with QEMU's as recorded in the rig
#                   (tests/compat/ref/installer-qemu.warnings, refreshed by
#                   VIVARIUM_MEDIA_QEMU=all VIVARIUM_MEDIA_REF=update).
#   uefi-iso        (not by default: see below) OVMF (Debian's
#                   OVMF_CODE_4M.fd, a fresh copy of OVMF_VARS_4M.fd) boots
#                   GRUB for UEFI from the CD-ROM (mk-grub-iso.sh --efi):
#                   GRUB's menu and countdown on COM1; then the VMM is killed
#                   (SIGKILL) with the menu up and boots again from the same
#                   store: OVMF wrote the store and takes it back.
# A case passes when vivarium reaches the goal; QEMU's time to the same goal
# in the same run is printed beside it (a QEMU that fails as well points at
# the rig or the medium, and is said).  About 100 s.
#
# Environment: VIVARIUM_MEDIA_CASES (default "isolinux memtest-kernel
# installer"), VIVARIUM_MEDIA_QEMU=all (QEMU runs every case, about 8
# minutes in all), VIVARIUM_MEDIA_REF=update (with QEMU's installer run:
# write its warnings as the reference), VIVARIUM_IMAGE_CACHE.
#
# Exit: 0 pass, 1 fail, 77 skip (no QEMU, kernel, OVMF, GRUB for UEFI,
# memtest86+ or ISOLINUX).

set -u
here=$(cd "$(dirname "$0")" && pwd)
rig=$here/../rig/rig.sh
images=$here/../images
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
# shellcheck source=tests/images/lib.sh
. "$images/lib.sh"
viv=${1:-}
timeout_s=${VIVARIUM_E2E_TIMEOUT:-900}
MEMTEST=/boot/memtest86+x64.bin

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

rig_test_setup "$viv"
[ -r "$OVMF_CODE" ] && [ -r "$OVMF_VARS" ] || skip "no $OVMF_CODE (apt-get install ovmf)"
[ -d "$GRUB_EFI_DIR" ] || skip "no GRUB for UEFI in $GRUB_EFI_DIR (apt-get install grub-efi-amd64-bin)"
[ -f "$MEMTEST" ] || skip "no $MEMTEST (apt-get install memtest86+)"
[ -f /usr/lib/ISOLINUX/isolinux.bin ] || skip "no isolinux.bin (apt-get install isolinux)"
di=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64

efi_iso=$("$images/get-image.sh" grub-efi-iso) || fail "could not build the GRUB for UEFI ISO"
isolinux_iso=$("$images/get-image.sh" isolinux-iso) || fail "could not build the ISOLINUX ISO"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-media.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Runs in L1 (busybox sh), arguments CASE:VMM...: for each, "=== CASE name vmm",
# stage lines "STAGE <seconds> <what>" as they are seen on COM1, then
# "=== END name vmm <goal|timeout|exited N> <seconds>".
cat >"$work/test.sh" <<'EOF'
ESC=$(printf '\033')
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }
# COM1 without carriage returns; each terminal escape starts a new line
# (memtest86+ places its text with them).
clean() { tr -d '\r' <"$1" | tr "$ESC" '\n'; }
stop_vmm() {
	kill -"${2:-TERM}" "$1" 2>/dev/null
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.5
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
# watch NAME VMM TIMEOUT STAGES...: a stage is "ERE|what"; the last one is
# the goal; "ticks" as a stage's ERE means two different GRUB countdowns.
# The VMM runs as $pid writing COM1 to /tmp/com1.log.  Sets $result.
watch() {
	name=$1 vmm=$2 limit=$3
	shift 3
	t0=$(now)
	seen=" "
	result=timeout
	while :; do
		text=$(clean /tmp/com1.log)
		i=0
		for s in "$@"; do
			i=$((i + 1))
			case $seen in *" $i "*) continue ;; esac
			pat=${s%%|*}
			if [ "$pat" = ticks ]; then
				[ "$(echo "$text" | grep -aoE 'executed automatically in [0-9]+s' | sort -u | wc -l)" -ge 2 ] || continue
			else
				echo "$text" | grep -aqE -- "$pat" || continue
			fi
			seen="$seen$i "
			echo "STAGE $(since "$t0") ${s#*|}"
		done
		case $seen in *" $# "*) result=goal; break ;; esac
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			result="exited-$?"
			break
		fi
		if awk -v l="$limit" -v e="$(since "$t0")" 'BEGIN { exit !(e >= l) }'; then
			break
		fi
		sleep 0.5
	done
	secs=$(since "$t0")
	if [ "$result" != goal ]; then
		echo "--- the last COM1 lines:"
		clean /tmp/com1.log | grep -av '^ *$' | tail -n 12
		echo "--- the VMM's output:"
		tail -n 8 /tmp/vmm.out
	fi
}
# start VMM CASE [VARS]: the VMM on that case's medium, in the background
# ($pid), COM1 into /tmp/com1.log.
start() {
	c=$2 vars=${3:-}
	cpus=${UEFI_CPUS:-1} mib=256
	[ "$c" = uefi-iso ] || cpus=2
	[ "$c" = installer ] && mib=1024
	: >/tmp/com1.log
	if [ "$1" = vivarium ]; then
		set -- vivarium run --memory "${mib}M" --cpus "$cpus" --serial file:/tmp/com1.log --display none --nic none
		case $c in
		uefi-iso) set -- "$@" --firmware uefi --vars "$vars" --cdrom /guest/uefi.iso --boot cdrom ;;
		isolinux) set -- "$@" --firmware bios --cdrom /guest/isolinux.iso --boot cdrom ;;
		memtest-kernel) set -- "$@" --kernel /guest/memtest.bin --append console=ttyS0,115200 ;;
		installer) set -- "$@" --kernel /guest/di-linux --initrd /guest/di-initrd.gz --append console=ttyS0,115200 ;;
		esac
	else
		set -- qemu-system-x86_64 -accel kvm -machine pc,kernel_irqchip=split,smm=off -cpu host \
			-m "$mib" -smp "$cpus" -nic none -display none -monitor none \
			-serial file:/tmp/com1.log -fw_cfg name=etc/sercon-port,file=/tmp/sercon
		case $c in
		uefi-iso) set -- "$@" -boot d -drive file=/guest/uefi.iso,format=raw,media=cdrom,readonly=on \
			-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
			-drive "if=pflash,format=raw,unit=1,file=$vars" ;;
		isolinux) set -- "$@" -boot d -drive file=/guest/isolinux.iso,format=raw,media=cdrom,readonly=on ;;
		memtest-kernel) set -- "$@" -kernel /guest/memtest.bin -append console=ttyS0,115200 ;;
		installer) set -- "$@" -kernel /guest/di-linux -initrd /guest/di-initrd.gz -append console=ttyS0,115200 ;;
		esac
	fi
	"$@" </dev/null >/tmp/vmm.out 2>&1 &
	pid=$!
}
printf '\370\003' >/tmp/sercon
grub="Welcome to GRUB|GRUB started"
menu="Vivarium test entry B|GRUB drew its menu"
ticks="ticks|GRUB's countdown ticks"
mt_start="Memtest86\+ v|memtest86+ started"
mt_mem="Memory  :|memtest86+ sized the RAM"
mt_goal="#[2-9]  \[|memtest86+ tests #0 and #1 completed"
for cv in "$@"; do
	c=${cv%:*} vmm=${cv#*:}
	{
		echo "=== CASE $c $vmm"
		case $c in
		uefi-iso)
			vars=/tmp/vars-$vmm.fd
			cp /usr/share/OVMF/OVMF_VARS_4M.fd "$vars"
			start $vmm $c "$vars"
			watch $c $vmm 240 "BdsDxe|OVMF's boot manager started" "$grub" "$menu" "$ticks"
			stop_vmm $pid KILL
			echo "=== END $c $vmm $result $secs"
			if cmp -s "$vars" /usr/share/OVMF/OVMF_VARS_4M.fd; then
				echo "VARS-WRITTEN $vmm no"
			else
				echo "VARS-WRITTEN $vmm yes $(cmp -l "$vars" /usr/share/OVMF/OVMF_VARS_4M.fd | wc -l) bytes"
			fi
			echo "=== CASE uefi-again $vmm"
			start $vmm $c "$vars"
			watch uefi-again $vmm 240 "$grub" "$menu" "$ticks"
			stop_vmm $pid
			echo "=== END uefi-again $vmm $result $secs"
			;;
		isolinux)
			start $vmm $c
			watch $c $vmm 180 "Booting from DVD/CD|SeaBIOS boots the CD" "ISOLINUX 6|ISOLINUX loaded itself" \
				"boot:|ISOLINUX's prompt" "$mt_start" "$mt_mem"
			echo "MEMTEST-SCREEN $vmm $(clean /tmp/com1.log | grep -aoE 'Memory  : *[0-9]+[KMG]B|CPU: *[0-9]+ Cores?|Errors?: *[0-9]+' | sort -u | tr '\n' ';')"
			stop_vmm $pid
			echo "=== END $c $vmm $result $secs"
			;;
		installer)
			start $vmm $c
			watch $c $vmm 240 "Linux version|the installer's kernel started" "Run /init|its initramfs runs" \
				"Select a language|the installer's first screen (Select a language)"
			stop_vmm $pid
			echo "=== END $c $vmm $result $secs"
			echo "--- $vmm's kernel warnings:"
			clean /tmp/com1.log | grep -aiE 'WARNING|BUG|Oops|Call Trace|ACPI Error|ACPI BIOS Error|firmware bug' | head -n 20
			echo "--- end"
			;;
		memtest-kernel)
			start $vmm $c
			watch $c $vmm 180 "$mt_start" "$mt_mem" "$mt_goal"
			echo "MEMTEST-SCREEN $vmm $(clean /tmp/com1.log | grep -aoE 'Memory  : *[0-9]+[KMG]B|CPU: *[0-9]+ Cores?|Errors?: *[0-9]+' | sort -u | tr '\n' ';')"
			stop_vmm $pid
			echo "=== END $c $vmm $result $secs"
			;;
		esac
	}
done
exit 0
EOF

# uefi-iso is not among the default cases: OVMF in L2 stops the rig itself
# (the rig's QEMU, 7.2 and 10.0 alike, aborts on a TCG assertion,
# "tcg_handle_interrupt: assertion failed: (bql_locked())", under vivarium
# and under QEMU in L1 alike).  VIVARIUM_MEDIA_CASES=uefi-iso runs it where
# the rig can.
cases=${VIVARIUM_MEDIA_CASES:-isolinux memtest-kernel installer}
files=()
case " $cases " in
*" installer "*)
	[ -r "$di/linux" ] && [ -r "$di/initrd.gz" ] ||
		skip "no Debian installer in $di (apt-get install debian-installer-12-netboot-amd64)"
	files+=(--file "$di/linux:/guest/di-linux" --file "$di/initrd.gz:/guest/di-initrd.gz")
	;;
esac
for f in /usr/share/seabios/bios-256k.bin /usr/share/seabios/vgabios-stdvga.bin "$OVMF_CODE" "$OVMF_VARS"; do
	[ -r "$f" ] && files+=(--file "$f:$f")
done
# case:vmm pairs in the order they run (QEMU's UEFI boot last).  QEMU runs
# without SMM (smm=off), as vivarium has none.
runs=""
for c in $cases; do
	runs="$runs $c:vivarium"
	# ISOLINUX loading memtest86+ from the CD takes ~40 s in L2 with either
	# VMM: QEMU's run of it (57 s against vivarium's 62 s to memtest's
	# tests, 2026-12-07) only with VIVARIUM_MEDIA_QEMU=all, for make test's time.
	# The installer's QEMU run (~160 s) likewise: its warnings are on
	# record (tests/compat/ref/).
	case $c in isolinux|installer) [ "${VIVARIUM_MEDIA_QEMU:-}" != all ] && continue ;; esac
	[ "$c" = uefi-iso ] || runs="$runs $c:qemu"
done
case " $cases " in *" uefi-iso "*) runs="$runs uefi-iso:qemu" ;; esac
echo "# running vivarium and QEMU in the nested rig:$runs"
# shellcheck disable=SC2086
"$rig" --retries 2 --timeout "$timeout_s" --mem 3072 --qemu --bin "$viv:/bin/vivarium" "${files[@]}" \
	--file "$efi_iso:/guest/uefi.iso" --file "$isolinux_iso:/guest/isolinux.iso" \
	--file "$MEMTEST:/guest/memtest.bin" --file "$work/test.sh:/rig/test.sh" \
	-- "UEFI_CPUS=${VIVARIUM_UEFI_CPUS:-1} sh /rig/test.sh$runs" </dev/null 2>&1 | tee "$work/out"
rig_output "$work/out" >"$work/out.txt"
o=$work/out.txt
grep -aq "^=== CASE" "$o" || fail "the rig ran no case"

errors=0
check() {
	if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); fi
}
# end NAME VMM: "result seconds" of that run.
end() { grep -a "^=== END $1 $2 " "$o" | tail -n1 | cut -d' ' -f5-; }
# stage NAME VMM WHAT: the seconds at which that run saw the stage.
stage() {
	awk -v c="=== CASE $1 $2" -v w="$3" '$0 == c { on = 1; next } /^=== END / { on = 0 }
		on && $1 == "STAGE" { s = $2; $1 = $2 = ""; sub(/^  /, ""); if ($0 == w) { print s; exit } }' "$o"
}
table="| case | goal | vivarium | QEMU | vivarium/QEMU |\n| --- | --- | --- | --- | --- |\n"
row() {
	local v q r
	v=$(end "$1" vivarium) q=$(end "$1" qemu)
	r=$(awk -v a="${v#* }" -v b="${q#* }" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	if [ -n "$q" ]; then q="${q% *} ${q#* } s"; else q="not run"; fi
	table="$table| $1 | $2 | ${v% *} ${v#* } s | $q | $r |\n"
}
for c in $cases; do
	case $c in
	uefi-iso)
		check '[ "$(end uefi-iso vivarium | cut -d" " -f1)" = goal ]' \
			"OVMF boots GRUB for UEFI from the CD: menu and countdown on COM1 ($(end uefi-iso vivarium) s; OVMF's boot manager at $(stage uefi-iso vivarium "OVMF's boot manager started") s)"
		check 'grep -aq "^VARS-WRITTEN vivarium yes" "$o"' \
			"OVMF wrote its variable store ($(grep -a '^VARS-WRITTEN vivarium' "$o" | cut -d' ' -f3-))"
		check '[ "$(end uefi-again vivarium | cut -d" " -f1)" = goal ]' \
			"after a SIGKILL with the menu up, OVMF boots again from the same store ($(end uefi-again vivarium) s)"
		row uefi-iso "GRUB menu"
		row uefi-again "GRUB menu, second boot"
		;;
	isolinux)
		check '[ "$(end isolinux vivarium | cut -d" " -f1)" = goal ]' \
			"isolinux: SeaBIOS boots the CD, ISOLINUX shows its prompt at $(stage isolinux vivarium "ISOLINUX's prompt") s and starts memtest86+ from the CD ($(end isolinux vivarium) s)"
		scr=$(grep -a "^MEMTEST-SCREEN vivarium" "$o" | tail -n1 | cut -d' ' -f3-)
		check 'grep -qE "Memory  : *2[45][0-9]MB" <<<"$scr"' "isolinux: memtest86+ sees the guest's 256 MiB ($scr)"
		row isolinux "ISOLINUX, memtest86+ sized RAM"
		;;
	installer)
		check '[ "$(end installer vivarium | cut -d" " -f1)" = goal ]' \
			"installer: the Debian installer (netboot kernel + initrd) reaches its first screen, Select a language ($(end installer vivarium) s)"
		# The warnings only vivarium's guest printed (QEMU's in the same rig
		# are the nested emulation's: see compat_kernel_in_rig).
		warn() { sed -n "/^--- $1's kernel warnings:/,/^--- end/p" "$o" | sed '1d;$d' |
			sed -E 's/^\[ *[0-9.]+\] *//; s/0x[0-9a-f]+/0x…/g' | LC_ALL=C sort -u; }
		ref=$here/ref/installer-qemu.warnings
		if [ -n "$(end installer qemu)" ]; then
			against="QEMU's boot in the same rig"
			warn qemu >"$work/qemu.warnings"
			if [ "${VIVARIUM_MEDIA_REF:-}" = update ]; then
				cp "$work/qemu.warnings" "$ref" && echo "# wrote $ref from QEMU's run"
			fi
		else
			against="QEMU's boot in the rig as recorded ($ref)"
			LC_ALL=C sort -u "$ref" >"$work/qemu.warnings" 2>/dev/null
		fi
		extra=$(LC_ALL=C comm -23 <(warn vivarium) "$work/qemu.warnings")
		check '[ -z "$extra" ] && { [ -n "$(end installer qemu)" ] || [ -f "$ref" ]; }' \
			"installer: no kernel warning that $against did not print too (${extra:-none}; vivarium's: $(warn vivarium | wc -l), QEMU's: $(wc -l <"$work/qemu.warnings"))"
		row installer "Select a language"
		;;
	memtest-kernel)
		check '[ "$(end memtest-kernel vivarium | cut -d" " -f1)" = goal ]' \
			"memtest-kernel: memtest86+ completes its tests #0 and #1 on 2 vCPUs ($(end memtest-kernel vivarium) s)"
		scr=$(grep -a "^MEMTEST-SCREEN vivarium" "$o" | tail -n1 | cut -d' ' -f3-)
		check 'grep -qE "Memory  : *2[45][0-9]MB" <<<"$scr" && grep -qE "CPU: *2 Cores" <<<"$scr" && ! grep -qE "Errors?: *[1-9]" <<<"$scr"' \
			"memtest-kernel: memtest86+ sees 256 MiB and 2 CPUs and reports no error ($scr)"
		row memtest-kernel "memtest #0, #1"
		;;
	esac
	r=$(end "$c" qemu)
	case $r in
	goal*) ;;
	'') echo "# QEMU did not run $c (VIVARIUM_MEDIA_QEMU=all runs it)" ;;
	*) echo "# note: QEMU did not reach $c's goal either ($r): the rig or the medium" ;;
	esac
done
echo "# media in the nested rig, seconds from the VMM's start (same rig run):"
printf "%b" "$table" | sed 's/^/# /'
[ "$errors" -eq 0 ] || fail "$errors checks failed"
echo PASS
