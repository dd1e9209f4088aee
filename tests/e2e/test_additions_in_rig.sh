#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_additions_in_rig.sh VIVARIUM - the guest additions installed the way
# a user installs them, and still there after a reboot, with a real Linux
# guest in the nested rig:
#  - the guest's system is on a virtio disk (ext4, busybox init reading
#    /etc/inittab; tests/rig/mkguest-initramfs.sh --desk --rootfs), the VM
#    has a shared folder with a guest path;
#  - `vivarium additions insert` puts the CD in the drive; in the guest,
#    `sh /cdrom/install.sh` installs the agent (no compiler, no kernel
#    headers: it is one static program) and its inittab line;
#  - the guest reboots (busybox reboot, the VM resets: `status` counts a
#    second boot) and, with no one starting it by hand, the agent mounts
#    the share at its guest path and reports the guest's OS name (from its
#    /etc/os-release) and address, which `status` and `show` list;
#  - `uninstall.sh` takes it all away again.
#
# Exit: 0 pass, 1 fail, 77 skip (no qemu-system-x86_64, guest kernel or
# mke2fs).
set -u
here=$(cd "$(dirname "$0")" && pwd)
rig=$here/../rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
viv=${1:-}
timeout_s=${VIVARIUM_E2E_TIMEOUT:-720}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

rig_test_setup "$viv"
command -v mke2fs >/dev/null || skip "mke2fs is not installed (apt-get install e2fsprogs)"
iso=$(dirname "$(dirname "$viv")")/guest-additions/vivarium-additions.iso
[ -s "$iso" ] || fail "no guest additions CD at $iso (built by ninja with xorriso)"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-additions.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/../rig/mkguest-initramfs.sh" --desk --rootfs "$work/root.img" "$work/loader.cpio.gz" >/dev/null ||
	fail "cannot build the guest's root disk"

# Runs where the VMM runs (L1).  $1: kernel, $2: loader, $3: root disk.
cat >"$work/test.sh" <<'EOF'
k=$1 i=$2 img=$3
export XDG_DATA_HOME=${WORK:-/tmp}/data XDG_RUNTIME_DIR=${WORK:-/tmp}/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
viv=${VIV:-vivarium}
dir=$XDG_DATA_HOME/vivarium/vms/ga
log=$dir/serial.log
share=${WORK:-/tmp}/ga-share
# Every call into the VM is bounded, so that a VM that stops answering
# fails the test with its logs instead of running into the rig's timeout.
say() { printf '%s\n' "$1" | timeout 30 $viv console ga >/dev/null 2>&1; }
after() {
	n=0
	until tail -n +"$(($1 + 1))" "$log" 2>/dev/null | grep -q "$2"; do
		n=$((n + 1))
		[ $n -gt $(($3 * 5)) ] && return 1
		sleep 0.2
	done
}
mark() { wc -l <"$log" 2>/dev/null || echo 0; }
ask() { m=$(mark); say "$1"; after "$m" "$2" "$3"; }
status() { timeout 30 $viv status ga --json | tr -d '\n'; }
# run NAME SECONDS CMD: CMD in the guest's shell; prints GA-RC-NAME=<status>
# and its output as GA-OUT-NAME: lines.
run() {
	local name=$1 secs=$2 m0
	shift 2
	m0=$(mark)
	say "sh $*"
	after "$m0" "GUEST-SH-RC=" "$secs"
	# (the agent's messages share the console: a line may start with one)
	tail -n +"$((m0 + 1))" "$log" | tr -d '\r' | sed -n '/GUEST-SH-RC=/q; s/^GUEST-SH: /GA-OUT-'"$name"': /p'
	echo "GA-RC-$name=$(tail -n +"$((m0 + 1))" "$log" | tr -d '\r' | grep -m1 -o 'GUEST-SH-RC=[0-9]*' | cut -d= -f2)"
}

mkdir -p "$share" && echo "shared-from-the-host" >"$share/hello"
$viv create ga --kernel "$k" --initrd "$i" --memory 384M \
	--append "console=ttyS0 quiet panic=-1" || exit 10
printf '\n[disk0]\npath=%s\nformat=raw\n\n[share0]\npath=%s\ntag=hostshare\nguest-path=/srv/hostshare\n' \
	"$img" "$share" >>"$dir/vm.conf"
VIVARIUM_ADDITIONS_ISO=/guest/additions.iso $viv additions insert ga; echo "GA-INSERT-RC=$?"
$viv start ga --display none || exit 11
# waiting MARK: the guest's init says GUEST-WAITING after MARK, within 240 s
# by L1's clock (the guest's first boot takes 15-60 s in the rig).
waiting() {
	read -r t0 _ </proc/uptime
	until after "$1" GUEST-WAITING 1; do
		read -r t _ </proc/uptime
		if [ "${t%.*}" -gt $((${t0%.*} + 240)) ] || ! timeout 30 $viv status ga | grep -q running; then
			echo "GA-NO-WAITING after $((${t%.*} - ${t0%.*})) s: $(timeout 30 $viv status ga 2>&1)"; return 1
		fi
	done
}
waiting 0 || { tr -d '\r' <"$log"; cat "$dir/vm.log"; timeout 30 $viv stop ga --force; exit 12; }
echo "GA-BOOT1 $(status)"

run before 20 "grep -c vivarium-additions /etc/inittab"
run install 120 "mkdir -p /cdrom && mount -t iso9660 -o ro /dev/sr0 /cdrom && sh /cdrom/install.sh; r=\$?; umount /cdrom; exit \$r"
run installed 20 "grep vivarium-additions /etc/inittab && ls -l /usr/local/sbin/vivarium-additions"

# The reboot: busybox init runs the shutdown line (umount -a -r) and
# resets the machine; the loader and the disk's init come up again.
m2=$(mark)
say "sh sync; reboot"
waiting "$m2" || { tr -d '\r' <"$log"; cat "$dir/vm.log"; timeout 30 $viv stop ga --force; exit 13; }
n=0
until status | tr -d ' ' | grep -q '"addresses":\["10.0.2.15"' || [ $n -gt 90 ]; do
	sleep 1; n=$((n + 1))
done
echo "GA-BOOT2 $(status)"
$viv show ga | grep -iE "^ *(guest|ip):" | sed 's/^/GA-SHOW: /'
# (early in boot the agent may find 9p not loaded yet: it tries again
# after 2 s, then 4, 8...)
n=0
until tail -n +"$((m2 + 1))" "$log" | grep -q "share hostshare mounted at /srv/hostshare" || [ $n -gt 60 ]; do
	sleep 1; n=$((n + 1))
done
run mounted 60 "grep ' /srv/hostshare ' /proc/mounts && cat /srv/hostshare/hello"
run running 20 "ps -o pid,args | grep '[v]ivarium-additions'"

# And away again.
run uninstall 120 "mkdir -p /cdrom && mount -t iso9660 -o ro /dev/sr0 /cdrom && sh /cdrom/uninstall.sh; r=\$?; umount /cdrom; exit \$r"
run after 20 "grep -c vivarium-additions /etc/inittab || ! test -e /usr/local/sbin/vivarium-additions"

$viv stop ga --timeout 60; echo "GA-STOP-RC=$?"
echo "--- serial.log"; tr -d '\r' <"$log"
echo "--- vm.log"; cat "$dir/vm.log"
exit 0
EOF

echo "# running vivarium in the nested rig"
"$rig" --retries 3 --timeout "$timeout_s" --bin "$viv:/bin/vivarium" \
	--file "$iso:/guest/additions.iso" \
	--file "$kernel:/guest/vmlinuz" --file "$work/loader.cpio.gz:/guest/loader.cpio.gz" \
	--file "$work/root.img:/guest/root.img" --file "$work/test.sh:/rig/test.sh" \
	-- "sh /rig/test.sh /guest/vmlinuz /guest/loader.cpio.gz /guest/root.img" \
	</dev/null 2>&1 | tee "$work/out"

rig_output "$work/out" >"$work/out.txt"
o=$work/out.txt
errors=0
check() {
	if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); fi
}
val() { grep -a "^$1=" "$o" | tail -n1 | cut -d= -f2-; }
has() { grep -aq -- "$1" "$o"; }
grep -aq "^GA-BOOT1" "$o" || fail "the guest never came up from its disk (see the output above)"
rc() { val "GA-RC-$1"; }
out() { grep -a "^GA-OUT-$1: " "$o" | sed "s/^GA-OUT-$1: //"; }

check 'has "GUEST-ROOT=vda"' "the loader mounted the guest's root disk and switched to it"
check '[ "$(val GA-INSERT-RC)" = 0 ]' "vivarium additions insert put the CD in the drive"
check '[ "$(rc before)" = 1 ]' "before: no agent in the guest's /etc/inittab ($(out before))"
check '[ "$(rc install)" = 0 ] && out install | grep -q "respawn line added to /etc/inittab"' \
	"install.sh from the CD installed the agent with an inittab line ($(out install | tr '\n' ' '))"
check '[ "$(rc installed)" = 0 ]' "the inittab line and /usr/local/sbin/vivarium-additions are there"
check 'grep -a "^GA-BOOT2" "$o" | grep -q "\"boots\" *: *2"' "the guest rebooted: status counts a second boot ($(grep -a '^GA-BOOT2' "$o" | grep -ao '"boots" *: *[0-9]*'))"
check 'grep -a "^GA-BOOT2" "$o" | tr -d " " | grep -q "\"addresses\":\[\"10.0.2.15\""' \
	"after the reboot the agent, started by init, reports the guest's address ($(grep -a '^GA-BOOT2' "$o" | grep -ao '"addresses" *: *\[[^]]*\]'))"
check 'grep -a "^GA-BOOT2" "$o" | grep -q "\"os\" *: *\"Vivarium test guest (busybox)\""' \
	"and its OS name from /etc/os-release ($(grep -a '^GA-BOOT2' "$o" | grep -ao '"os" *: *"[^"]*"'))"
check 'grep -a "^GA-SHOW: " "$o" | grep -q "Vivarium test guest" && grep -a "^GA-SHOW: " "$o" | grep -q "10.0.2.15"' \
	"show lists them ($(grep -a '^GA-SHOW: ' "$o" | tr '\n' ' '))"
check '[ "$(rc mounted)" = 0 ] && out mounted | grep -qx "shared-from-the-host"' \
	"the agent mounted the share at its guest path /srv/hostshare and the host's file reads back ($(out mounted | head -n1))"
check '[ "$(rc running)" = 0 ]' "the agent runs after the reboot ($(out running))"
check '[ "$(rc uninstall)" = 0 ]' "uninstall.sh from the CD ran ($(out uninstall | tr '\n' ' '))"
check '[ "$(rc after)" = 0 ] && out after | grep -qx 0' "after it: no inittab line, no agent binary"
check '[ "$(val GA-STOP-RC)" = 0 ]' "vivarium stop shut the guest down"
[ "$errors" -eq 0 ] || exit 1
exit 0
