#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_net_in_rig.sh VIVARIUM - a Linux guest's network through vivarium's
# NICs: virtio-net and e1000 behind NAT (libslirp), virtio-net on a TAP
# device, and the refusals of bad --nic options.
#
# The guest: the Debian kernel with the test initramfs built --net
# (tests/rig/mkguest-initramfs.sh: it loads virtio_net/e1000 and what they
# need, DHCPs eth0 or takes vivnet.ip=, serves a page with busybox httpd,
# fetches the vivnet.url= URLs and prints their md5sums, then GUEST-WAITING).
# Three runs of the nested rig (tun and bridge loaded in L1), one per step
# group (VIRTIO, E1000, TAP with BAD), each with `--retries 3`: every start
# of an L2 VM risks QEMU's emulated SVM wedging L1 (seen about one start in
# five on a loaded host, QEMU as the L2 VMM too; on 2026-12-08 one run
# lost its VIRTIO group to three L1 deaths in a row), and a wedge costs one
# group, not the whole test.  L1's script does, each step bounded with
# `timeout`:
#   VIRTIO  vivarium run ... --nic virtio,nat,hostfwd=tcp:127.0.0.1:8080-:80
#           L1 serves a page and a 64 MiB random file with busybox httpd on
#           127.0.0.1:8000; the guest gets 10.0.2.15 (gateway 10.0.2.2, DNS
#           10.0.2.3) by DHCP and fetches both from 10.0.2.2:8000 (md5sums
#           compared with L1's); L1 fetches the guest's page through the
#           host forward 127.0.0.1:8080 -> guest:80.
#   E1000   the same with --nic e1000,hostfwd=tcp:127.0.0.1:8080-:80
#   TAP     L1 makes tap0 and a bridge br0 (192.168.77.1/24) and serves the
#           page on 192.168.77.1:8000; vivarium run ... --nic
#           virtio,tap,ifname=tap0; the guest takes 192.168.77.2/24
#           (vivnet.ip=), pings 192.168.77.1 and fetches the page and the
#           64 MiB file; L1 pings the guest and fetches its page and a
#           16 MiB file of zeros it serves (vivnet.serve=16): both
#           directions of the TCP segmentation offloads TAP carries.
#   After VIRTIO, E1000 and TAP the VMM gets SIGTERM: it must end within
#   10 s and leave no process.
#   BAD     a --nic typo, a host forward on a port in use (L1's httpd's),
#           a tap device that does not exist: each must fail at once with a
#           one-line message on stderr, and leave no VMM process.
#
# VIVARIUM_E2E_VMM=qemu: the control (suite rig): the same steps with QEMU
# as the L2 VMM (-nic user,model=virtio-net-pci,hostfwd=..., -nic
# user,model=e1000, -nic tap,ifname=tap0,script=no,downscript=no,
# model=virtio-net-pci; a bad model name; the same busy port).  QEMU opens
# a tap device that does not exist by creating it (as root), so that one
# refusal is skipped for QEMU.
#
# Always in the rig: the TAP step needs root, tun and a bridge.  The vivarium
# variant is skipped (77) while `vivarium run --help` does not mention --nic.
#
# Exit: 0 pass, 1 fail, 77 skip.

set -u
here=$(cd "$(dirname "$0")" && pwd)
rig=$here/../rig/rig.sh
# shellcheck source=tests/rig/lib.sh
. "$here/../rig/lib.sh"
viv=${1:-}
vmm=${VIVARIUM_E2E_VMM:-vivarium}
timeout_s=${VIVARIUM_E2E_TIMEOUT:-480}	# per group

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (the rig needs it)"
kernel=$(newest_kernel)
[ -n "$kernel" ] || skip "no /boot/vmlinuz-* guest kernel (apt-get install linux-image-amd64)"
case $vmm in
vivarium)
	[ -n "$viv" ] && [ -x "$viv" ] || fail "vivarium binary '$viv' does not exist"
	"$viv" run --help 2>&1 | grep -q -- '--nic' ||
		skip "vivarium run has no --nic option yet (the NICs have not landed)"
	;;
qemu) ;;
*) fail "VIVARIUM_E2E_VMM must be vivarium or qemu, not '$vmm'" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-net.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/../rig/mkguest-initramfs.sh" --net "$work/guest.cpio.gz" || fail "cannot build the guest initramfs"

# The script L1 runs.  $1: vivarium|qemu, $2: kernel, $3: initrd, $4: the
# steps, comma-separated (VIRTIO, E1000, TAP, BAD).  It prints
# facts (NET-<STEP>-<WHAT>=<value>, L1's view) and each guest's serial log
# with "<STEP>| " before every line; the checks are made out here.
cat >"$work/l1.sh" <<'EOF'
vmm=$1 k=$2 i=$3 steps=$4
[ -z "${5:-}" ] || export VIVARIUM_IOFD=$5
has() { case ",$steps," in *",$1,"*) return 0 ;; esac; return 1; }
port=8000
append="console=ttyS0 quiet panic=-1"
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
# L1's /init leaves lo down: slirp's connections to 127.0.0.1 would fail
# with ENETUNREACH (the guest sees ICMP net unreachable).
ip link set lo up

mkdir -p /srv/www
echo VIVNET-HOST-PAGE-OK >/srv/www/page.html
t0=$(ms)
head -c 67108864 /dev/urandom >/srv/www/big.bin
echo "NET-HOST-BIG-BYTES=$(stat -c %s /srv/www/big.bin) NET-HOST-BIG-GEN-MS=$(($(ms) - t0))"
echo "NET-HOST-PAGE-MD5=$(md5sum </srv/www/page.html | cut -d' ' -f1)"
echo "NET-HOST-BIG-MD5=$(md5sum </srv/www/big.bin | cut -d' ' -f1)"
httpd -p 127.0.0.1:$port -h /srv/www && echo "NET-HOST-HTTPD=up" || echo "NET-HOST-HTTPD=fail"

if [ "$vmm" = qemu ]; then proc=qemu-system-x86_64; else proc=vivarium; fi
# vmm_cmd NIC-KIND: the VMM's command line, NIC included, without the
# guest's command line; NIC-KIND: virtio-nat, e1000-nat, virtio-tap.
vmm_cmd() {
	if [ "$vmm" = qemu ]; then
		case $1 in
		virtio-nat) nic="-nic user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:8080-:80" ;;
		e1000-nat) nic="-nic user,model=e1000,hostfwd=tcp:127.0.0.1:8080-:80" ;;
		virtio-tap) nic="-nic tap,ifname=tap0,script=no,downscript=no,model=virtio-net-pci" ;;
		esac
		echo "qemu-system-x86_64 -accel kvm -machine kernel_irqchip=split -m 512M -smp 2" \
			"-display none -monitor none -no-reboot -serial file:/tmp/serial.log" \
			"-kernel $k -initrd $i $nic"
	else
		case $1 in
		virtio-nat) nic="--nic virtio,nat,hostfwd=tcp:127.0.0.1:8080-:80" ;;
		e1000-nat) nic="--nic e1000,hostfwd=tcp:127.0.0.1:8080-:80" ;;
		virtio-tap) nic="--nic virtio,tap,ifname=tap0" ;;
		esac
		echo "vivarium run --cpus 2 --memory 512M --display none --serial file:/tmp/serial.log" \
			"--kernel $k --initrd $i $nic"
	fi
}
append_opt() { if [ "$vmm" = qemu ]; then echo -append; else echo --append; fi; }

# boot STEP NIC-KIND GUEST-ARGS: start the VMM in the background (bounded
# by timeout 300), wait for GUEST-WAITING (240 s) or the VMM's end.  QEMU
# gets there in 35-80 s, the 64 MiB fetch included (more when the machine
# is busy).
boot() {
	step=$1
	rm -f /tmp/serial.log
	echo "NET-$step-CMD=$(vmm_cmd $2) $(append_opt) '$append $3'"
	t0=$(ms)
	# shellcheck disable=SC2046
	timeout 300 $(vmm_cmd $2) $(append_opt) "$append $3" </dev/null >/tmp/vmm.out 2>&1 &
	vpid=$!
	until grep -q GUEST-WAITING /tmp/serial.log 2>/dev/null; do
		if ! kill -0 $vpid 2>/dev/null; then
			wait $vpid
			echo "NET-$step-BOOT=exited rc=$?"
			return 1
		fi
		if [ $(($(ms) - t0)) -gt 240000 ]; then
			echo "NET-$step-BOOT=timeout"
			return 1
		fi
		sleep 0.2
	done
	echo "NET-$step-BOOT=ok ms=$(($(ms) - t0))"
}
# finish STEP: stop the VMM (SIGTERM; SIGKILL after 10 s), print its output
# and the guest's serial log.
finish() {
	kill $vpid 2>/dev/null
	n=0
	while kill -0 $vpid 2>/dev/null && [ $n -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
	if kill -0 $vpid 2>/dev/null; then
		echo "NET-$1-TERM=ignored"
		kill -9 $vpid 2>/dev/null
	else
		echo "NET-$1-TERM=ok"
	fi
	wait $vpid 2>/dev/null
	sleep 0.5
	left=$(pidof $proc)
	echo "NET-$1-LEFT=${left:-none}"
	[ -z "$left" ] || kill -9 $left
	tr -d '\r' </tmp/vmm.out | sed "s/^/$1-VMM| /"
	tr -d '\r' </tmp/serial.log | sed "s/^/$1| /"
}
# fetchsum STEP WHAT URL: L1 fetches URL (120 s at most), prints its size,
# md5 and time.
fetchsum() {
	t0=$(ms)
	timeout 120 wget -q -O /tmp/fetched "$3" 2>/tmp/wget.err
	echo "NET-$1-$2-RC=$? NET-$1-$2-MS=$(($(ms) - t0)) NET-$1-$2-BYTES=$(stat -c %s /tmp/fetched 2>/dev/null) NET-$1-$2-MD5=$(md5sum </tmp/fetched | cut -d' ' -f1)"
	rm -f /tmp/fetched
}
# fetch STEP WHAT URL: L1 fetches URL (30 s at most), prints its md5 and time.
fetch() {
	t0=$(ms)
	body=$(timeout 30 wget -q -O - "$3" 2>/tmp/wget.err)
	echo "NET-$1-$2-RC=$? NET-$1-$2-MS=$(($(ms) - t0)) NET-$1-$2-BODY=$(echo $body | tr ' ' _)"
}

url="vivnet.url=http://10.0.2.2:$port/page.html,http://10.0.2.2:$port/big.bin"
for step in VIRTIO E1000; do
	has $step || continue
	case $step in VIRTIO) kind=virtio-nat ;; E1000) kind=e1000-nat ;; esac
	if boot $step $kind "$url"; then
		fetch $step HOSTFWD http://127.0.0.1:8080/index.html
	fi
	finish $step
done

# TAP: tap0 in br0, L1 at 192.168.77.1, the guest at .2.
if has TAP; then
tunctl -t tap0 >/dev/null && brctl addbr br0 && brctl addif br0 tap0 &&
	ip addr add 192.168.77.1/24 dev br0 && ip link set tap0 up && ip link set br0 up &&
	echo "NET-TAP-SETUP=ok" || echo "NET-TAP-SETUP=fail"
httpd -p 192.168.77.1:$port -h /srv/www
if boot TAP virtio-tap "vivnet.ip=192.168.77.2/24 vivnet.ping=192.168.77.1 vivnet.serve=16 vivnet.url=http://192.168.77.1:$port/page.html,http://192.168.77.1:$port/big.bin"; then
	fetch TAP GUESTPAGE http://192.168.77.2/index.html
	fetchsum TAP GUESTBIG http://192.168.77.2/big
	ping -c 3 192.168.77.2 >/tmp/ping.out 2>&1
	echo "NET-TAP-L1PING-RC=$? NET-TAP-L1PING-RTT=$(sed -n 's|.*min/avg/max = \([0-9./]*\).*|\1|p' /tmp/ping.out)"
fi
finish TAP
fi

# BAD NAME CMD...: must fail at once, one line on stderr, no VMM left.
bad() {
	name=$1 limit=$2
	shift 2
	t0=$(ms)
	timeout $limit "$@" </dev/null >/tmp/bad.out 2>/tmp/bad.err
	rc=$?
	t=$(($(ms) - t0))
	sleep 0.5
	left=$(pidof $proc)
	[ -z "$left" ] || kill -9 $left
	echo "NET-BAD-$name-RC=$rc NET-BAD-$name-MS=$t NET-BAD-$name-LINES=$(grep -c . /tmp/bad.err) NET-BAD-$name-LEFT=${left:-none}"
	tr -d '\r' </tmp/bad.err | sed "s/^/BAD-$name| /"
}
if ! has BAD; then
	:
elif [ "$vmm" = qemu ]; then
	q="qemu-system-x86_64 -accel kvm -m 256M -display none -monitor none -serial none -kernel $k -initrd $i"
	bad TYPO 30 $q -nic user,model=virtio-net-pcx
	bad PORTBUSY 30 $q -nic user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$port-:80
	bad NOTAP 20 $q -nic tap,ifname=nosuchtap0,script=no,downscript=no,model=virtio-net-pci
else
	v="vivarium run --memory 256M --display none --serial file:/tmp/bad.serial --kernel $k --initrd $i"
	bad TYPO 30 $v --nic virtoi
	bad PORTBUSY 30 $v --nic virtio,hostfwd=tcp:127.0.0.1:$port-:80
	bad NOTAP 30 $v --nic virtio,tap,ifname=nosuchtap0
fi
echo "NET-DONE"
# The session's end hangs the console up, and the serial driver drops what
# it has not sent yet: let the last lines out first.
sleep 1
EOF

echo "# running $vmm in the nested rig"
if [ "$vmm" = qemu ]; then extra=(--qemu); else extra=(--bin "$viv:/bin/vivarium"); fi
start=$(date +%s)
# VIVARIUM_E2E_GROUPS: a subset, to look at one (the checks of the others
# then fail).  VIVARIUM_E2E_IOFD: VIVARIUM_IOFD for vivarium in L1.
groups=${VIVARIUM_E2E_GROUPS:-VIRTIO E1000 TAP,BAD}
for g in $groups; do
	"$rig" --retries 3 --timeout "$timeout_s" "${extra[@]}" --module tun --module bridge \
		${VIVARIUM_E2E_RIG_APPEND:+--append "$VIVARIUM_E2E_RIG_APPEND"} \
		--file "$kernel:/guest/vmlinuz" --file "$work/guest.cpio.gz:/guest/initrd.cpio.gz" \
		--file "$work/l1.sh:/rig/l1.sh" \
		-- "sh /rig/l1.sh $vmm /guest/vmlinuz /guest/initrd.cpio.gz $g ${VIVARIUM_E2E_IOFD:-}" \
		</dev/null 2>&1 | tee "$work/out.$g"
done
wall=$(($(date +%s) - start))

# Each group's output on its own: L1's files (the 64 MiB file's md5) are
# made afresh in each run.  use GROUP: what val and gval read.
use() { out=$(rig_output "$work/out.$1"); }
use VIRTIO
# val KEY: the last value of KEY=value (the first word after '=').
val() { grep -ao "$1=[^ ]*" <<<"$out" | tail -n1 | cut -d= -f2-; }
# gval STEP KEY [FIELD [TEXT]]: the guest's KEY in STEP's serial log (the
# last such line, or the last one holding TEXT); with FIELD, that line's
# FIELD=value instead.
gval() {
	local line
	line=$(grep -a "^$1| $2=" <<<"$out" | grep -a -- "${4:-}" | tail -n1)
	if [ $# -ge 3 ] && [ -n "$3" ]; then
		grep -o " $3=[^ ]*" <<<"$line" | cut -d= -f2-
	else
		sed "s/^$1| $2=\([^ ]*\).*/\1/" <<<"$line"
	fi
}
errors=0
check() { if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; errors=$((errors + 1)); fi; }
mbps() { awk -v b="${1:-0}" -v ms="${2:-0}" 'BEGIN { if (ms > 0) printf "%.1f MiB/s", b / 1048576 / (ms / 1000); else print "?" }'; }

# host_files: L1's page and 64 MiB file of the group in use.
host_files() {
	# shellcheck disable=SC2034 # both are used in the tests that check() evals
	page_md5=$(val NET-HOST-PAGE-MD5)
	# shellcheck disable=SC2034
	big_md5=$(val NET-HOST-BIG-MD5)
}
for g in $groups; do
	use "$g"
	host_files
	check '[ "$(val NET-HOST-HTTPD)" = up ] && [ -n "$big_md5" ] && [ "$(val NET-HOST-BIG-BYTES)" = 67108864 ]' \
		"$g: L1 serves a page and a 64 MiB random file on 127.0.0.1:8000"
	check 'grep -q "^NET-DONE" <<<"$out"' "$g: L1's script ran to the end"
done
for step in VIRTIO E1000; do
	use $step
	host_files
	case $step in VIRTIO) drv=virtio_net ;; E1000) drv=e1000 ;; esac
	s=$(tr A-Z a-z <<<"$step")
	check '[ "$(val NET-$step-BOOT)" = ok ]' "$s NAT: the guest booted and reached GUEST-WAITING ($(grep -ao "NET-$step-BOOT=.*" <<<"$out" | tail -n1))"
	check '[ "$(gval $step GUEST-NET-DRIVER)" = $drv ]' "$s NAT: eth0's driver is $drv ($(gval $step GUEST-NET-DRIVER))"
	check '[ "$(gval $step GUEST-NET-DHCP)" = ok ] && [ "$(gval $step GUEST-NET-IP)" = 10.0.2.15 ]' \
		"$s NAT: DHCP gave 10.0.2.15 ($(gval $step GUEST-NET-DHCP), $(gval $step GUEST-NET-IP))"
	check '[ "$(gval $step GUEST-NET-GW)" = 10.0.2.2 ] && [ "$(gval $step GUEST-NET-DNS)" = 10.0.2.3 ]' \
		"$s NAT: gateway 10.0.2.2, DNS 10.0.2.3 ($(gval $step GUEST-NET-GW), $(gval $step GUEST-NET-DNS))"
	check '[ "$(gval $step GUEST-FETCH "" page.html)" = ok ] && [ "$(gval $step GUEST-FETCH-MD5 "" page.html)" = "$page_md5" ]' \
		"$s NAT: the guest fetched L1's page from 10.0.2.2:8000 (md5 matches)"
	bytes=$(gval $step GUEST-FETCH bytes big.bin) ms=$(gval $step GUEST-FETCH ms big.bin)
	check '[ "$(gval $step GUEST-FETCH "" big.bin)" = ok ] && [ "$(gval $step GUEST-FETCH-MD5 "" big.bin)" = "$big_md5" ]' \
		"$s NAT: the guest fetched the 64 MiB file intact (md5 matches; ${bytes:-?} bytes in ${ms:-?} ms, $(mbps "$bytes" "$ms") with md5sum)"
	check '[ "$(val NET-$step-HOSTFWD-RC)" = 0 ] && [ "$(val NET-$step-HOSTFWD-BODY)" = VIVNET-GUEST-PAGE-OK ]' \
		"$s NAT: L1 fetched the guest's page through hostfwd 127.0.0.1:8080 -> :80 ($(val NET-$step-HOSTFWD-MS) ms)"
	check '[ "$(val NET-$step-TERM)" = ok ] && [ "$(val NET-$step-LEFT)" = none ]' \
		"$s NAT: $vmm ended on SIGTERM, no process left"
done
use VIRTIO
nat_features=$(gval VIRTIO GUEST-NET-FEATURES)
use TAP,BAD
host_files
check '[ "$(val NET-TAP-SETUP)" = ok ]' "TAP: L1 made tap0 and br0 at 192.168.77.1/24"
check '[ "$(val NET-TAP-BOOT)" = ok ] && [ "$(gval TAP GUEST-NET-DHCP)" = static ] && [ "$(gval TAP GUEST-NET-IP)" = 192.168.77.2 ]' \
	"TAP: the guest booted with 192.168.77.2 ($(gval TAP GUEST-NET-DRIVER))"
# feat STEP BIT: bit BIT of the guest's negotiated virtio-net features.
feat() {
	local f
	if [ "$1" = VIRTIO ]; then f=$nat_features; else f=$(gval "$1" GUEST-NET-FEATURES); fi
	echo "${f:$2:1}"
}
check '[ "$(feat VIRTIO 7)$(feat VIRTIO 11)" = 00 ] && [ "$(feat TAP 1)$(feat TAP 7)$(feat TAP 11)" = 111 ]' \
	"virtio-net offloads: none over NAT; over TAP the guest took GUEST_CSUM, GUEST_TSO4, HOST_TSO4 (NAT $(feat VIRTIO 7)$(feat VIRTIO 11), TAP $(feat TAP 1)$(feat TAP 7)$(feat TAP 11))"
check '[ "$(gval TAP GUEST-PING)" = ok ]' "TAP: the guest pinged 192.168.77.1 (rtt min/avg/max $(gval TAP GUEST-PING rtt) ms)"
check '[ "$(gval TAP GUEST-FETCH "" page.html)" = ok ] && [ "$(gval TAP GUEST-FETCH-MD5 "" page.html)" = "$page_md5" ]' \
	"TAP: the guest fetched L1's page from 192.168.77.1:8000 (md5 matches)"
bytes=$(gval TAP GUEST-FETCH bytes big.bin) ms=$(gval TAP GUEST-FETCH ms big.bin)
check '[ "$(gval TAP GUEST-FETCH "" big.bin)" = ok ] && [ "$(gval TAP GUEST-FETCH-MD5 "" big.bin)" = "$big_md5" ]' \
	"TAP: the guest fetched the 64 MiB file intact (md5 matches; ${bytes:-?} bytes in ${ms:-?} ms, $(mbps "$bytes" "$ms") with md5sum)"
# shellcheck disable=SC2034 # used in the check below
zeros16_md5=$(head -c 16777216 /dev/zero | md5sum | cut -d' ' -f1)
check '[ "$(val NET-TAP-GUESTBIG-RC)" = 0 ] && [ "$(val NET-TAP-GUESTBIG-BYTES)" = 16777216 ] && [ "$(val NET-TAP-GUESTBIG-MD5)" = "$zeros16_md5" ]' \
	"TAP: L1 fetched the guest's 16 MiB file intact ($(val NET-TAP-GUESTBIG-BYTES) bytes in $(val NET-TAP-GUESTBIG-MS) ms)"
check '[ "$(val NET-TAP-L1PING-RC)" = 0 ]' "TAP: L1 pinged the guest (rtt min/avg/max $(val NET-TAP-L1PING-RTT) ms)"
check '[ "$(val NET-TAP-GUESTPAGE-RC)" = 0 ] && [ "$(val NET-TAP-GUESTPAGE-BODY)" = VIVNET-GUEST-PAGE-OK ]' \
	"TAP: L1 fetched the guest's page from 192.168.77.2:80"
check '[ "$(val NET-TAP-TERM)" = ok ] && [ "$(val NET-TAP-LEFT)" = none ]' "TAP: $vmm ended on SIGTERM, no process left"
for b in TYPO PORTBUSY NOTAP; do
	case $b in
	TYPO) what="a --nic typo" ;;
	PORTBUSY) what="a host forward on a port in use (127.0.0.1:8000)" ;;
	NOTAP) what="a tap device that does not exist" ;;
	esac
	rc=$(val NET-BAD-$b-RC) lines=$(val NET-BAD-$b-LINES)
	msg=$(grep -a "^BAD-$b| " <<<"$out" | head -n1 | cut -c$((${#b} + 7))-)
	if [ "$vmm" = qemu ] && [ "$b" = NOTAP ]; then
		echo "ok - bad input, $what: # SKIP QEMU creates a missing tap device as root (rc=$rc after $(val NET-BAD-$b-MS) ms)"
		continue
	fi
	check '[ -n "$rc" ] && [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$lines" = 1 ] && [ "$(val NET-BAD-$b-LEFT)" = none ]' \
		"bad input, $what: exit ${rc:-?} after $(val NET-BAD-$b-MS) ms, ${lines:-?} line(s) on stderr, no process left (\"$msg\")"
done
echo "# the three rig runs: $wall s"
[ "$errors" -eq 0 ] || fail "$errors checks failed"
echo "PASS"
