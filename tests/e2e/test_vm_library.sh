#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_vm_library.sh VIVARIUM - the VM library and per-VM processes through
# the command line, on this host's /dev/kvm.
#
# The guest is tests/e2e/tinyguest (a bzImage-wrapped program that prints
# "TINY-GUEST: ready" on COM1, echoes COM1 input upper-cased, and powers off
# through ACPI S5 when the power button is pressed): Linux cannot run on
# the CI machines' emulated KVM, and it is the one guest here that shows
# the ACPI power-button path end to end.
#
# Checks: create / list / show (text and JSON; list --json against
# docs/schemas/vm-list.schema.json), start headless, pause, resume,
# status, reset, screenshot (PNG of the VGA's screen, its text, a clear
# error for a bad path), the serial
# console (control socket attach-serial and `vivarium console`), stop
# through the ACPI power button, stop --force, three VMs at once, clones
# (a linked clone of a running VM's snapshot resumes it; a full clone
# boots), kill -9
# of a VM process (disk image intact, stale PID/socket recognised, start
# works again), delete, and every bad input: one line on stderr, non-zero
# exit, nothing left half-made.
#
# XDG_DATA_HOME and XDG_RUNTIME_DIR point into a temporary directory.
# Exit: 0 pass, 1 fail, 77 skip (no /dev/kvm).

set -u
# The library must be private whatever the umask: test with a lax one.
umask 022
here=$(cd "$(dirname "$0")" && pwd)
viv=${1:?usage: test_vm_library.sh VIVARIUM}
schema=$here/../../docs/schemas/vm-list.schema.json

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$viv" ] || { echo "FAIL: no vivarium binary at '$viv'"; exit 1; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no usable /dev/kvm"
command -v python3 >/dev/null || skip "python3 is not installed"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-lib.XXXXXX")
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
vms=$XDG_DATA_HOME/vivarium/vms
mnt=

cleanup() {
	local pidf
	# Never leave a VM process behind.
	for pidf in "$vms"/*/vm.pid; do
		[ -f "$pidf" ] && kill -9 "$(cat "$pidf")" 2>/dev/null
	done
	[ -n "$mnt" ] && umount "$mnt" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# refuse DESC ARGS...: vivarium must fail with exactly one line on stderr.
refuse() {
	local desc=$1
	shift
	v "$@"
	if [ "$rc" -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ]; then
		ok "$desc (rc $rc: $err)"
	else
		bad "$desc: rc $rc, stderr: $err"
	fi
}

# ctl NAME PY: run Python with a connected control socket `s` and helpers
# call(cmd, **args) -> reply object; events seen meanwhile go to `events`.
ctl() {
	python3 - "$XDG_RUNTIME_DIR/vivarium/$1.sock" "$2" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(15)
f = s.makefile('rwb', buffering=0)
ids = iter(range(1, 1000))
events = []
def call(cmd, **args):
    i = next(ids)
    f.write((json.dumps(dict(id=i, cmd=cmd, **args)) + '\n').encode())
    while True:
        m = json.loads(f.readline())
        if 'event' in m:
            events.append(m)
        elif m.get('id') == i:
            return m
exec(sys.argv[2])
PY
}

"$here/mktinyguest.sh" "$work/tiny.bzImage" || { echo "FAIL: cannot build the tiny guest"; exit 1; }
kernel=$work/tiny.bzImage
ready="TINY-GUEST: ready"

echo "# library: create, list, show"
v create t1 --kernel "$kernel" --memory 64M --disk-size 32M --notes "first VM"
check '[ "$rc" -eq 0 ] && [ -f "$vms/t1/vm.conf" ]' "create t1 (rc $rc) makes vms/t1/vm.conf"
disk=$(ls "$vms"/t1/disk.* 2>/dev/null | head -n1)
check '[ -n "$disk" ] && qemu-img info "$disk" | grep -q "virtual size: 32 MiB"' \
	"create --disk-size 32M: a 32 MiB image ($(basename "${disk:-none}")) qemu-img reads"
check '! ls -a "$vms" | grep -q "^\.t1"' "no temporary folder left after create"
# mode PATH: its permission bits, as stat prints them.
mode() { stat -c %a "$1" 2>/dev/null; }
check '[ "$(mode "$vms")" = 700 ] && [ "$(mode "$vms/t1")" = 700 ] && [ "$(mode "$vms/t1/vm.conf")" = 600 ] &&
	[ "$(mode "$disk")" = 600 ]' \
	"umask 022: library $(mode "$vms"), VM folder $(mode "$vms/t1"), vm.conf $(mode "$vms/t1/vm.conf"), disk $(mode "$disk") (want 700 700 600 600)"
v list
check '[ "$rc" -eq 0 ] && grep -Eq "^t1 +stopped +64M +1 " <<<"$out"' "list shows t1 stopped, 64M, 1 vCPU"
v show t1
check 'grep -q "^memory: *64M" <<<"$out" && grep -q "^notes: *first VM" <<<"$out"' "show t1 (text)"
v show t1 --json
check 'python3 -c "
import json, sys
d = json.loads(sys.argv[1])
assert d[\"name\"] == \"t1\" and d[\"memory\"] == 64 << 20 and d[\"cpus\"] == 1
assert d[\"state\"] == \"stopped\" and d[\"pid\"] is None and d[\"kernel\"] == sys.argv[2]
assert len(d[\"disks\"]) == 1 and d[\"disks\"][0][\"path\"] == sys.argv[3]
" "$out" "$kernel" "$disk"' "show t1 --json: name, memory, cpus, state, kernel, disk"
v edit t1 cpus=2 notes=
check '[ "$rc" -eq 0 ] && "$viv" show t1 | grep -q "^cpus: *2" && ! "$viv" show t1 | grep -q "^notes"' \
	"edit t1 cpus=2 notes= (rc $rc)"
v create t2 --kernel "$kernel" --memory 32M
v create t3 --kernel "$kernel" --memory 32M
"$viv" list --json >"$work/list.json"
check 'python3 "$here/check_json_schema.py" "$schema" "$work/list.json" >&2' \
	"list --json matches docs/schemas/vm-list.schema.json"
check '[ "$(python3 -c "import json; print(len(json.load(open(\"$work/list.json\"))))")" = 3 ]' \
	"list --json has the 3 VMs"
# A library made before it was private is tightened when a VM is loaded.
chmod 755 "$vms" "$vms/t2"
v show t2
check '[ "$rc" -eq 0 ] && [ "$(mode "$vms")" = 700 ] && [ "$(mode "$vms/t2")" = 700 ] && grep -q "made it 0700" <<<"$err"' \
	"a library found 0755 is made 0700, with a warning ($(mode "$vms") $(mode "$vms/t2"): $err)"

echo "# UEFI: each VM's variable store"
if [ -r /usr/share/OVMF/OVMF_VARS_4M.fd ]; then
	v create u1 --firmware uefi --memory 32M
	check '[ "$rc" -eq 0 ] && cmp -s "$vms/u1/uefi-vars.fd" /usr/share/OVMF/OVMF_VARS_4M.fd &&
		[ "$(mode "$vms/u1/uefi-vars.fd")" = 600 ] && grep -q "^firmware=uefi" "$vms/u1/vm.conf"' \
		"create --firmware uefi: firmware=uefi, OVMF_VARS_4M.fd copied to uefi-vars.fd (600)"
	refuse "create --firmware uefi --kernel" create bad --firmware uefi --kernel "$kernel"
	v create u2 --memory 32M --firmware bios
	v edit u2 firmware=uefi
	check '[ "$rc" -eq 0 ] && [ -f "$vms/u2/uefi-vars.fd" ] && grep -q "bios -> uefi" <<<"$out" &&
		grep -q "EFI system partition" <<<"$out"' \
		"edit firmware=uefi of a BIOS VM makes its store and says what the switch means"
	# A variable the guest set (a changed byte) survives a switch and back.
	printf 'x' | dd of="$vms/u2/uefi-vars.fd" bs=1 seek=100 conv=notrunc 2>/dev/null
	sum=$(sha256sum <"$vms/u2/uefi-vars.fd")
	v edit u2 firmware=bios
	check '[ "$rc" -eq 0 ] && grep -q "stays" <<<"$out"' "edit firmware=bios keeps the store, and says so"
	v edit u2 firmware=uefi
	check '[ "$(sha256sum <"$vms/u2/uefi-vars.fd")" = "$sum" ] && grep -q "kept from before" <<<"$out"' \
		"back to uefi: the same store (the guest's variables kept)"
	v clone u2 u3
	check '[ "$rc" -eq 0 ] && cmp -s "$vms/u2/uefi-vars.fd" "$vms/u3/uefi-vars.fd"' "a clone gets a copy of the store"
	for n in u1 u2 u3; do "$viv" delete "$n" --yes >/dev/null 2>&1; done
else
	echo "# no /usr/share/OVMF/OVMF_VARS_4M.fd (Debian's ovmf): skipped"
fi

echo "# bad input"
conf_sum=$(sha256sum "$vms/t1/vm.conf")
refuse "create of an existing name" create t1 --kernel "$kernel"
check '[ "$(sha256sum "$vms/t1/vm.conf")" = "$conf_sum" ]' "the existing VM is untouched"
refuse "start of a VM that does not exist" start nosuch
refuse "--memory 12Q" create bad --memory 12Q
refuse "--disk-size 12Q" create bad --disk-size 12Q
refuse "--cpus 0" create bad --cpus 0
refuse "an ISO that does not exist" create bad --iso "$work/nosuch.iso"
mkdir "$work/dir.iso"
refuse "an ISO that is not a regular file" create bad --iso "$work/dir.iso"
refuse "a kernel that does not exist" create bad --kernel "$work/nosuch"
refuse "a name with '/'" create "a/b"
refuse "a name starting with '.'" create .hidden
refuse "a 65-character name" create "$(printf 'x%.0s' $(seq 65))"
refuse "edit memory=12Q" edit t1 memory=12Q
refuse "edit of an unknown key" edit t1 colour=blue
refuse "edit vnc port out of range" edit t1 vnc=0.0.0.0:99999
refuse "edit vnc with an empty socket path" edit t1 vnc=unix:
refuse "edit vnc-password-file=/dev/zero" edit t1 vnc-password-file=/dev/zero
mkfifo "$work/pw.fifo"
refuse "edit vnc-password-file of a FIFO" edit t1 vnc-password-file="$work/pw.fifo"
refuse "start --vnc port out of range" start t1 --vnc 127.0.0.1:0
check '[ "$(sha256sum "$vms/t1/vm.conf")" = "$conf_sum" ]' "failed edits leave vm.conf as it was"
refuse "stop of a VM that is not running" stop t1
refuse "delete without --yes, not on a terminal" delete t2
check '[ ! -e "$vms/bad" ] && [ -z "$(ls -A "$vms" | grep "^\.")" ]' "nothing half-made in the library"
# A full disk: the library on a small tmpfs that is nearly full.
mnt=$work/small
mkdir -p "$mnt"
if mount -t tmpfs -o size=256k tmpfs "$mnt" 2>/dev/null; then
	(umask 077 && mkdir -p "$mnt/vivarium/vms")	# private, as create makes it
	head -c 250000 /dev/zero >"$mnt/filler" 2>/dev/null
	XDG_DATA_HOME=$mnt refuse "create with --disk-size on a full disk" \
		create full --kernel "$kernel" --disk-size 64M
	XDG_DATA_HOME=$mnt refuse "create on a full disk" create full2 --kernel "$kernel" --notes "$(head -c 20000 /dev/zero | tr '\0' x)"
	check '[ -z "$(ls -A "$mnt/vivarium/vms")" ]' "a full disk leaves nothing in the library ($(ls -A "$mnt/vivarium/vms" | tr '\n' ' '))"
	umount "$mnt"
	mnt=
else
	echo "# (cannot mount a tmpfs here: full-disk case not run)"
fi

echo "# lifecycle of t1"
v start t1
check '[ "$rc" -eq 0 ]' "start t1 (rc $rc: $out$err)"
check 'wait_for "$vms/t1/serial.log" "$ready"' "t1's guest printed '$ready' (serial.log)"
check '[ "$(state t1)" = running ]' "list --json: t1 running"
check '[ "$(mode "$vms/t1/vm.log")" = 600 ]' "vm.log is 600 ($(mode "$vms/t1/vm.log"))"
pid1=$(cat "$vms/t1/vm.pid" 2>/dev/null)
check '[ -n "$pid1" ] && kill -0 "$pid1"' "vm.pid names a live process ($pid1)"
check '[ -S "$XDG_RUNTIME_DIR/vivarium/t1.sock" ]' "control socket in \$XDG_RUNTIME_DIR/vivarium"
refuse "start of a running VM" start t1
refuse "delete of a running VM" delete t1 --yes
v pause t1
check '[ "$rc" -eq 0 ] && [ "$(state t1)" = paused ]' "pause: state paused"
v status t1 --json
check 'grep -q "\"state\" : \"paused\"" <<<"$out"' "status --json says paused"
printf '%s\n' "$out" >"$work/status.json"
check 'python3 "$here/check_json_schema.py" "$here/../../docs/schemas/status.schema.json" "$work/status.json" >&2' \
	"status --json matches docs/schemas/status.schema.json"
# The test guest has no virtio_input driver: the PS/2 pair has the input.
check 'grep -q "\"pointer\" : \"relative\"" <<<"$out" && grep -q "\"keyboard\" : \"ps2\"" <<<"$out"' \
	"status --json: pointer relative, keyboard ps2 (no guest driver)"
v resume t1
check '[ "$rc" -eq 0 ] && [ "$(state t1)" = running ]' "resume: state running"
(cd "$work" && v screenshot t1 shot.png)
png_size=$(python3 -c "
import struct, sys
d = open(sys.argv[1], 'rb').read(24)
assert d[:8] == b'\x89PNG\r\n\x1a\n' and d[12:16] == b'IHDR'
print('%dx%d' % struct.unpack('>II', d[16:24]))" "$work/shot.png" 2>/dev/null)
check '[ "$rc" -eq 0 ] && [ "$png_size" = 720x400 ]' \
	"screenshot (relative path): a PNG of the VGA's 80x25 text screen (${png_size:-no PNG}; $err)"
v screenshot t1 --text
check '[ "$rc" -eq 0 ] && [ "$(wc -l <<<"$out")" -eq 25 ]' "screenshot --text: 25 rows ($(wc -l <<<"$out"))"
v screenshot t1 "$work/no/such/dir/shot.png"
check '[ "$rc" -ne 0 ] && grep -q "cannot create" <<<"$err" && [ ! -e "$work/no" ]' \
	"screenshot to a missing folder: a clear error ($err)"
echo=$(ctl t1 '
r = call("attach-serial")
assert r["ok"], r
s.sendall(b"ping vivarium\n")
got = b""
t = time.time() + 15
while b"PING VIVARIUM" not in got and time.time() < t:
    got += s.recv(4096)
print(got.decode(errors="replace").strip())' 2>&1)
check 'grep -q "PING VIVARIUM" <<<"$echo"' "attach-serial: the guest echoes what we type ($echo)"
cons=$( { printf 'hello console'; sleep 3; printf '\001x'; } |
	timeout 20 "$viv" console t1 2>&1)
crc=$?
check '[ "$crc" -eq 0 ] && grep -q "HELLO CONSOLE" <<<"$cons" && grep -q "detached" <<<"$cons"' \
	"console: typed text reaches the guest and back; Ctrl-A x detaches (rc $crc)"
check '[ "$(state t1)" = running ]' "the VM still runs after the console detached"
events=$(ctl t1 '
r = call("subscribe")
assert r["ok"], r
assert call("pause")["ok"] and call("resume")["ok"]
print(" ".join(e["state"] for e in events))' 2>&1)
check '[ "$events" = "paused running" ]' "subscribe: state events paused, running ($events)"
# Its default NIC (virtio-net on NAT): listed, its cable pulled and plugged.
nics=$(ctl t1 '
r = call("subscribe")
n = call("nics")["result"]["nics"]
assert len(n) == 1 and n[0]["model"] == "virtio" and n[0]["network"] == "nat" and n[0]["link"] == "up", n
d = call("nic-link", nic=0, up=False)
assert d["ok"] and d["result"]["nics"][0]["link"] == "down", d
bad = call("nic-link", nic=3, up=True)
assert not bad["ok"] and "no NIC 3" in bad["error"], bad
u = call("nic-link", nic=0, up=True)
assert u["ok"] and u["result"]["nics"][0]["link"] == "up", u
print(n[0]["mac"], " ".join(e["nic"]["link"] for e in events if e["event"] == "nic"))' 2>&1)
mac=$(sed -n "s/^mac *= *//p" "$vms/t1/vm.conf")
check '[ -n "$mac" ] && [ "$nics" = "$mac down up" ] && "$viv" show t1 | grep -q "^nic0: *virtio-net $mac nat"' 	"nics / nic-link: the default virtio-net NAT card with vm.conf's MAC, its cable pulled and plugged, nic events ($nics)"
v reset t1
check '[ "$rc" -eq 0 ] && wait_for "$vms/t1/serial.log" "$ready" 2' "reset: the guest starts again"
check 'wait_for "$vms/t1/vm.log" "the machine restarted (boot 2 " 1' "vm.log says the machine restarted"
v status t1
check 'grep -q "2 boots" <<<"$out"' "status counts 2 boots ($out)"
start=$(date +%s%N)
v stop t1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check '[ "$rc" -eq 0 ] && grep -q "TINY-GUEST: power button" "$vms/t1/serial.log"' \
	"stop: the guest saw the ACPI power button (rc $rc, ${ms} ms)"
check 'grep -q "guest powered off" "$vms/t1/vm.log"' "vm.log: the guest powered off (not forced)"
check '[ ! -e "$vms/t1/vm.pid" ] && [ ! -e "$XDG_RUNTIME_DIR/vivarium/t1.sock" ] && ! kill -0 "$pid1" 2>/dev/null' \
	"the VM process is gone with its PID file and socket"
check '[ "$(state t1)" = stopped ]' "list: t1 stopped"

echo "# three VMs at once"
for n in t1 t2 t3; do v start "$n"; [ "$rc" -eq 0 ] || bad "start $n: $err"; done
all=1
for n in t1 t2 t3; do wait_for "$vms/$n/serial.log" "$ready" || all=0; done
check '[ "$all" = 1 ]' "t1, t2, t3 all reached '$ready'"
pids=$("$viv" list --json | python3 -c "
import json, sys
print(' '.join(str(v['pid']) for v in json.load(sys.stdin) if v['state'] == 'running'))")
check '[ "$(wc -w <<<"$pids")" = 3 ] && [ "$(tr " " "\n" <<<"$pids" | sort -u | wc -l)" = 3 ]' \
	"list: three running VMs, three processes ($pids)"
v stop t2 --force
check '[ "$rc" -eq 0 ] && grep -q "VM stopped (plug pulled)" "$vms/t2/vm.log" && [ "$(state t2)" = stopped ]' "stop --force t2"
v stop t3
check '[ "$rc" -eq 0 ] && [ "$(state t3)" = stopped ] && [ "$(state t1)" = running ]' "stop t3; t1 still runs"

echo "# kill -9 of a VM process"
sum_before=$(sha256sum <"$disk")
pid1=$(cat "$vms/t1/vm.pid")
kill -9 "$pid1"
for _ in $(seq 50); do kill -0 "$pid1" 2>/dev/null || break; sleep 0.1; done
check '[ "$(state t1)" = stopped ]' "list shows the killed VM stopped (stale vm.pid: $([ -e "$vms/t1/vm.pid" ] && echo present || echo absent))"
check '[ "$(sha256sum <"$disk")" = "$sum_before" ]' "its disk image is unchanged"
# Someone else holding a read lock on the stale vm.pid (anyone who can open
# it can) must not make the crashed VM look running.
if [ -e "$vms/t1/vm.pid" ]; then
	python3 -c 'import fcntl, sys, time
f = open(sys.argv[1])
fcntl.lockf(f, fcntl.LOCK_SH)
print("locked", flush=True)
time.sleep(60)' "$vms/t1/vm.pid" >"$work/locker.out" 2>&1 &
	locker=$!
	wait_for "$work/locker.out" locked 1 10
	check '[ "$(state t1)" = stopped ]' "a read lock on the stale vm.pid does not make t1 look running"
	v start t1
	check '[ "$rc" -eq 0 ] && [ "$(state t1)" = running ]' \
		"start takes a new vm.pid over the reader's lock (rc $rc $err)"
	v stop t1 --force
	kill $locker; wait $locker 2>/dev/null
fi
case $disk in
*.qcow2) check 'qemu-img check "$disk" >&2' "qemu-img check of its qcow2 image" ;;
*) check 'qemu-img info -f raw "$disk" | grep -q "virtual size: 32 MiB"' "qemu-img still reads its raw image" ;;
esac
v start t1
check '[ "$rc" -eq 0 ] && wait_for "$vms/t1/serial.log" "$ready"' "start works again after the kill (rc $rc $err)"
v stop t1 --force
check '[ "$rc" -eq 0 ]' "stop --force t1"

echo "# a firmware-level guest: SeaBIOS with no disk"
# SeaBIOS prints its banner on COM1 (sercon: no display) and then waits
# for a bootable device; it has no ACPI OS to answer the power button, so
# `stop --timeout` must pull the plug.
v create fw --firmware bios --memory 64M
check '[ "$rc" -eq 0 ] && "$viv" show fw | grep -q "^firmware: *bios"' "create fw --firmware bios"
v start fw
check '[ "$rc" -eq 0 ]' "start the firmware guest (rc $rc $err)"
if [ "$rc" -eq 0 ]; then
	check 'wait_for "$vms/fw/serial.log" "SeaBIOS" 1 90' "SeaBIOS printed its banner on the serial console"
	v pause fw
	check '[ "$rc" -eq 0 ] && [ "$(state fw)" = paused ]' "pause the firmware guest"
	v resume fw
	check '[ "$rc" -eq 0 ] && [ "$(state fw)" = running ]' "resume the firmware guest"
	start=$(date +%s)
	v stop fw --timeout 2
	secs=$(( $(date +%s) - start ))
	check '[ "$rc" -eq 0 ] && grep -q "VM stopped (plug pulled)" "$vms/fw/vm.log" && [ "$secs" -ge 2 ] && [ "$secs" -le 8 ]' \
		"stop --timeout 2: no ACPI OS answers, the plug is pulled after 2 s (took ${secs}s)"
	check '[ "$(state fw)" = stopped ]' "the firmware guest is stopped"
fi

echo "# save and resume"
# listens PORT: something accepts TCP connections on 127.0.0.1:PORT.
listens() { python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2).close()' "$1" 2>/dev/null; }
fport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
v create sv --kernel "$kernel" --memory 32M --nic "virtio,nat,hostfwd=tcp::$fport-:22"
v start sv
check '[ "$rc" -eq 0 ] && wait_for "$vms/sv/serial.log" "$ready" && listens "$fport"' "start sv (a NAT card forwarding port $fport)"
v save sv
check '[ "$rc" -eq 0 ] && grep -q "saved VM" <<<"$out"' "save sv ($out$err)"
check '[ "$(state sv)" = saved ] && [ -f "$vms/sv/saved.state" ] && [ -f "$vms/sv/saved.ram" ]' \
	"list says saved; saved.state and saved.ram are in its folder"
check '[ "$(mode "$vms/sv/saved.state")" = 600 ] && [ "$(mode "$vms/sv/saved.ram")" = 600 ]' "both are 600"
check 'grep -qa "net\.0" "$vms/sv/saved.state" && ! listens "$fport"' "the state holds the NAT's section (net.0); the process and its forward are gone"
refuse "save of a VM that is not running" save sv
v start sv
check '[ "$rc" -eq 0 ] && [ "$(state sv)" = running ]' "start resumes sv ($err)"
check 'listens "$fport" && ! grep -q "net nat:\|net\.0\|libslirp\|address already in use" "$vms/sv/vm.log"' \
	"the resumed NAT forwards port $fport again, with nothing to say in vm.log"
resumed=$( { printf 'after resume\n'; sleep 2; } | timeout 20 "$viv" console sv 2>&1)
check 'grep -q "AFTER RESUME" <<<"$resumed" && ! grep -q "$ready" "$vms/sv/serial.log"' \
	"the resumed guest echoes on its console and did not boot again"
check '[ ! -e "$vms/sv/saved.state" ] && [ ! -e "$vms/sv/saved.ram" ]' "the saved state was consumed"
v save sv
printf 'VIVSTATE junk' >"$vms/sv/saved.state"
refuse "start with a corrupt saved state" start sv
check 'grep -q "discard" <<<"$err" && [ -f "$vms/sv/saved.state" ] && [ "$(state sv)" = saved ]' \
	"the refusal says how to drop it, and keeps it"
v discard sv
check '[ "$rc" -eq 0 ] && [ "$(state sv)" = stopped ] && [ ! -e "$vms/sv/saved.ram" ]' "discard drops it"
refuse "discard of a VM without a saved state" discard sv
v start sv
check '[ "$rc" -eq 0 ] && wait_for "$vms/sv/serial.log" "$ready"' "the next start boots afresh"
v save sv
refuse "edit memory= of a saved VM" edit sv memory=64M
check 'grep -q "holds a saved state made with its present memory" <<<"$err" && grep -q "^memory *= *32M" "$vms/sv/vm.conf" &&
	[ "$(state sv)" = saved ]' "says why; vm.conf and the saved state stay ($err)"
v edit sv notes=kept-while-saved
check '[ "$rc" -eq 0 ] && grep -q "kept-while-saved" "$vms/sv/vm.conf"' "edit of a key that is not hardware (notes) works on a saved VM"
# A vm.conf changed behind the library's back: start refuses the state.
sed -i 's/^memory *= *32M/memory=64M/' "$vms/sv/vm.conf"
refuse "start of a saved VM whose memory size changed" start sv
check 'grep -q "another machine configuration" <<<"$err" && [ "$(state sv)" = saved ]' "says why; the saved state stays"
v discard sv
v delete sv --yes

echo "# snapshots of a running VM"
# boots NAME: how often its machine was built (1 + resets + rebuilds).
boots() { "$viv" status "$1" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["boots"])'; }
# echoes NAME TEXT: the guest echoes TEXT upper-cased on its console.
echoes() { { printf '%s\n' "$2"; sleep 2; } | timeout 20 "$viv" console "$1" 2>/dev/null | tr -d '\r' | grep -q "^${2^^}$"; }
v create rs --kernel "$kernel" --memory 32M --disk-size 16M --nic none
v start rs
check '[ "$rc" -eq 0 ] && wait_for "$vms/rs/serial.log" "$ready"' "start rs"
v snapshot take rs s1 --description "while running"
check '[ "$rc" -eq 0 ] && [ "$(state rs)" = running ] && [ "$(boots rs)" = 1 ]' \
	"take of a running VM: it runs on, not rebuilt (its disks moved to the overlays in place) (rc $rc $err)"
"$viv" snapshot list rs --json >"$work/snaps.json"
check 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"snapshots\"][0][\"has_memory\"] is True" "$work/snaps.json" 2>/dev/null ||
	grep -q "\"has_memory\" *: *true" "$work/snaps.json"' "the snapshot holds memory"
check 'echoes rs after-take && [ "$(grep -c "$ready" "$vms/rs/serial.log")" = 1 ]' "the guest answers and did not boot again"
check 'qemu-img info -U --backing-chain "$(sed -n "s/^path *= *//p" "$vms/rs/vm.conf" | head -n1 | sed "s|^\([^/]\)|$vms/rs/\1|")" | grep -q "backing file"' \
	"its disk is now an overlay on the frozen image"
# A linked clone of the running VM's snapshot: saved at it, it resumes
# there beside its source (both read the frozen image).  (rs has no NIC: a
# clone of a VM with network cards gets new MAC addresses, and so boots
# from the snapshot's disks instead.)
refuse "clone of a running VM's current state" clone rs rsx
v clone rs rsl --snapshot s1 --linked
check '[ "$rc" -eq 0 ] && [ "$(state rsl)" = saved ]' "linked clone of the running VM's snapshot: saved at it (rc $rc $out$err)"
v start rsl
check '[ "$rc" -eq 0 ] && echoes rsl from-clone && ! grep -q "$ready" "$vms/rsl/serial.log" && [ "$(state rs)" = running ]' \
	"the clone resumes the snapshot's memory (no boot), its source running on ($err)"
v stop rsl --force
v delete rsl --yes
v snapshot revert rs s1
check '[ "$rc" -eq 0 ] && [ "$(state rs)" = running ] && [ "$(boots rs)" = 2 ]' "revert of the running VM: rebuilt from the snapshot (rc $rc $err)"
check 'echoes rs after-revert && [ "$(grep -c "$ready" "$vms/rs/serial.log")" = 1 ]' "it goes on from the snapshot, no boot"
v snapshot take rs s2
check '[ "$rc" -eq 0 ]' "take s2 of the running VM (rc $rc $err)"
v pause rs
v snapshot take rs s3
check '[ "$rc" -eq 0 ] && [ "$(state rs)" = paused ]' "take of a paused VM leaves it paused (rc $rc $err)"
v resume rs
b=$(boots rs)
v snapshot delete rs s2
check '[ "$rc" -eq 0 ] && [ "$(state rs)" = running ] && [ "$(boots rs)" = "$b" ] &&
	! "$viv" snapshot list rs | grep -qw s2' \
	"delete of a snapshot while the VM runs: merged with its disks closed, not rebuilt (rc $rc $out$err)"
check 'echoes rs after-delete && [ "$(grep -c "$ready" "$vms/rs/serial.log")" = 1 ]' "it goes on after the delete, no boot"
v snapshot delete rs s3
check '[ "$rc" -eq 0 ] && [ "$(state rs)" = running ] && echoes rs after-delete-top' \
	"delete of the snapshot the VM's disk sits on, while it runs (rc $rc $out$err)"
v stop rs --force
v clone rs rsf
check '[ "$rc" -eq 0 ] && [ "$(state rsf)" = stopped ]' "full clone of the stopped VM (rc $rc $out$err)"
v start rsf
check '[ "$rc" -eq 0 ] && wait_for "$vms/rsf/serial.log" "$ready"' "the full clone boots ($err)"
v stop rsf --force
v delete rsf --yes
v snapshot revert rs s1
check '[ "$rc" -eq 0 ] && [ "$(state rs)" = saved ]' "revert of the stopped VM to a snapshot with memory: it is saved there"
v start rs
check '[ "$rc" -eq 0 ] && echoes rs after-resume && ! grep -q "$ready" "$vms/rs/serial.log"' "start resumes the snapshot's memory"
v stop rs --force
bad_img=0
for img in "$vms"/rs/*.qcow2 "$vms"/rs/snapshots/*.qcow2; do
	qemu-img check -q "$img" >/dev/null 2>&1 || bad_img=1
done
check '[ "$bad_img" = 0 ]' "qemu-img check is clean on every image"
v snapshot delete rs s1
check '[ "$rc" -eq 0 ] && [ -z "$(ls "$vms/rs/snapshots" | grep -E "\.(state|ram)$")" ]' "delete drops the snapshot's memory files"
v delete rs --yes

echo "# kill -9 of a VM process while it takes a snapshot"
# Each round: a running VM with snapshot k0, a take of k<i> whose VM process
# is killed at a different point; then k0 must read as before (its image
# unchanged and clean, the index naming it, a revert to it boots).
v create kr --kernel "$kernel" --memory 32M --disk-size 16M --nic none
v snapshot take kr k0
k0img=$vms/kr/disk.qcow2
k0sum=$(sha256sum <"$k0img")
killed_ok=1
for i in 1 2 3 4 5; do
	v start kr
	wait_for "$vms/kr/serial.log" "$ready" || { killed_ok=0; break; }
	pid=$(cat "$vms/kr/vm.pid")
	"$viv" snapshot take kr "k$i" >/dev/null 2>&1 &
	sleep "$(printf 0.%03d $((i * 60 + RANDOM % 60)))"
	kill -9 "$pid" 2>/dev/null
	wait $! 2>/dev/null
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	[ "$(sha256sum <"$k0img")" = "$k0sum" ] || { killed_ok=0; echo "# round $i: k0's image changed"; }
	qemu-img check -q "$k0img" >/dev/null 2>&1 || { killed_ok=0; echo "# round $i: k0's image not clean"; }
	"$viv" snapshot list kr | grep -qw k0 || { killed_ok=0; echo "# round $i: k0 is gone from the list"; }
done
check '[ "$killed_ok" = 1 ]' "k0 reads as before after five VM processes killed in mid-take"
bad_img=0
for img in "$vms"/kr/*.qcow2 "$vms"/kr/snapshots/*.qcow2; do
	qemu-img check -q "$img" >/dev/null 2>&1
	rc_check=$?
	# 3: leaked clusters only, which an interrupted take may leave.
	[ "$rc_check" = 0 ] || [ "$rc_check" = 3 ] || bad_img=1
done
check '[ "$bad_img" = 0 ]' "qemu-img check is clean on every image left (leaks allowed)"
v snapshot revert kr k0
v start kr
check '[ "$rc" -eq 0 ] && wait_for "$vms/kr/serial.log" "$ready"' "revert to k0 and start: it boots ($err)"
v stop kr --force
v delete kr --yes

echo "# delete"
v delete t3 --yes
check '[ "$rc" -eq 0 ] && [ ! -e "$vms/t3" ] && [ "$(state t3)" = absent ]' "delete t3 --yes removes its folder"
# A library entry that is a symbolic link: refused, nothing touched.
mkdir "$work/elsewhere"
printf '[vm]\nname=lnk\n' >"$work/elsewhere/vm.conf"
echo keep >"$work/elsewhere/precious"
ln -s "$work/elsewhere" "$vms/lnk"
refuse "delete of a VM entry that is a symbolic link" delete lnk --yes
check 'grep -q "symbolic link" <<<"$err" && [ -L "$vms/lnk" ] && [ "$(cat "$work/elsewhere/precious")" = keep ] &&
	[ -f "$work/elsewhere/vm.conf" ] && [ -z "$(ls -A "$vms" | grep "^\.")" ]' \
	"the link, its target's files and the library are as they were"
rm "$vms/lnk"
# Links inside a VM folder go as links; what they point to stays.
ln -s "$work/elsewhere/precious" "$vms/t2/disk.qcow2"
mkdir "$vms/t2/sub"
ln -s "$work/elsewhere" "$vms/t2/sub/dirlink"
v delete t2 --yes
check '[ "$rc" -eq 0 ] && [ ! -e "$vms/t2" ] && [ ! -L "$vms/t2" ] && [ "$(cat "$work/elsewhere/precious")" = keep ] &&
	[ -f "$work/elsewhere/vm.conf" ]' "delete t2 with links inside removes the links, not their targets (rc $rc $err)"

echo "# $total checks, $errors failed"
[ "$errors" -eq 0 ] || { echo "FAIL"; exit 1; }
echo "PASS"
