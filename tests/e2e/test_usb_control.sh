#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_usb_control.sh VIVARIUM - USB passthrough's commands on a running
# library VM without a host device: `vivarium usb list|attach|detach`, the
# control protocol's usb-attach/usb-detach/usb-list with bad input (no fd,
# an fd that is no USB device, bad members), a VM without the controller,
# and a vm.conf [usb0] whose device is absent (the VM starts, vm.log says
# so).  Every refusal is one line and the VM keeps running.  The real
# device's path runs in the rig (test_usb_passthrough_in_rig.sh).
#
# The guest is tests/e2e/tinyguest on this host's /dev/kvm.
# Exit: 0 pass, 1 fail, 77 skip (no /dev/kvm).

set -u
here=$(cd "$(dirname "$0")" && pwd)
viv=${1:?usage: test_usb_control.sh VIVARIUM}

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$viv" ] || { echo "FAIL: no vivarium binary at '$viv'"; exit 1; }
viv=$(realpath "$viv")
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no usable /dev/kvm"
command -v python3 >/dev/null || skip "python3 is not installed"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-usbctl.XXXXXX")
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
vms=$XDG_DATA_HOME/vivarium/vms
rundir=$XDG_RUNTIME_DIR/vivarium

cleanup() {
	local pidf
	for pidf in "$vms"/*/vm.pid; do
		[ -f "$pidf" ] && kill -9 "$(cat "$pidf")" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT

V_TIMEOUT=60
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# py SOCK CODE: call(obj, fd=None) -> the reply (events skipped), with an
# optional fd passed along (SCM_RIGHTS).
py() {
	WORK=$work timeout -k 5 60 python3 - "$1" "$2" <<'PY'
import array, json, os, socket, sys
path = sys.argv[1]
def call(req, fd=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(20)
    line = (json.dumps(req) + "\n").encode()
    if fd is None:
        s.sendall(line)
    else:
        s.sendmsg([line], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    buf = b""
    while True:
        while b"\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise EOFError("VM closed the connection")
            buf += d
        l, buf = buf.split(b"\n", 1)
        m = json.loads(l)
        if "event" not in m:
            s.close()
            return m
def refused(req, fd=None, want=""):
    r = call(req, fd)
    assert r["ok"] is False and want in r["error"] and "\n" not in r["error"], (req, r)
    print("   ", json.dumps(req), "->", r["error"])
exec(sys.argv[2])
PY
}

"$here/mktinyguest.sh" "$work/tiny.bzImage" || { echo "FAIL: cannot build the tiny guest"; exit 1; }
kernel=$work/tiny.bzImage

echo "# vivarium usb host: lists or says there are none"
v usb host
check '[ "$rc" -eq 0 ] && [ -n "$out" ]' "usb host (rc $rc: $(head -1 <<<"$out"))"

echo "# vivarium doctor names the devices you may not open, and the fix"
d=$work/root/sys/bus/usb/devices/1-2
mkdir -p "$d"
echo 1 >"$d/busnum"; echo 3 >"$d/devnum"; echo 0781 >"$d/idVendor"
echo 5583 >"$d/idProduct"; echo 480 >"$d/speed"; echo "Ultra Fit" >"$d/product"
v doctor --root "$work/root"
check 'grep -q "USB 1-2 .*0781:5583 Ultra Fit: not yours to open" <<<"$out" && grep -q "udev rule" <<<"$out"' \
	"doctor: USB 1-2 not yours to open, with the udev fix"

v create u --kernel "$kernel" --memory 64M --disk-size 1M --usb on
v start u --display none
check '[ "$rc" -eq 0 ]' "start u with usb=on (rc $rc: $err)"
for i in $(seq 50); do [ -S "$rundir/u.sock" ] && break; sleep 0.1; done

upid=$(cat "$XDG_DATA_HOME/vivarium/vms/u/vm.pid" 2>/dev/null)
kpid=$(pgrep -P "${upid:-0}" -f "usb-keeper" | head -n1)
check '[ -n "$kpid" ] && [ "$(ps -o sid= -p "$kpid" | tr -d " ")" = "$kpid" ]' \
	"the VM process started its USB keeper (pid ${kpid:-none}), in a session of its own"

v usb list u
check '[ "$rc" -eq 0 ] && grep -q "no host USB devices" <<<"$out"' "usb list: none ($out)"
v usb detach u 1-1
check '[ "$rc" -eq 1 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q "no USB device .1-1. is passed through" <<<"$err"' \
	"usb detach of a device it lacks: one line ($err)"
v usb attach u dead:beef
check '[ "$rc" -eq 1 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q "no USB device dead:beef on this host" <<<"$err"' \
	"usb attach of an unknown VID:PID: one line ($err)"
v usb attach u 12345
check '[ "$rc" -eq 1 ] && grep -q "VID:PID" <<<"$err"' "usb attach of a malformed name: one line ($err)"

echo "# the control protocol with bad input"
py "$rundir/u.sock" '
fd = os.open("/dev/null", os.O_RDWR)
good = {"cmd": "usb-attach", "device": "1-1", "vid": 1, "pid": 2, "speed": "480"}
refused(good, None, "no file descriptor")
refused(dict(good, speed="7"), fd, "speed")
refused(dict(good, device="046d:c52b"), fd, "BUS-PORT")
refused(dict(good, vid=70000), fd)
refused(dict(good, device=5), fd)
refused({"cmd": "usb-attach"}, fd)
refused(good, fd, "USB 1-1")          # /dev/null is no usbfs node
refused({"cmd": "usb-detach"}, None, "device")
refused({"cmd": "usb-detach", "device": "3"}, None, "no USB device")
r = call({"cmd": "usb-list"})
assert r["ok"] and r["result"]["devices"] == [], r
json.dump(r["result"], open(os.environ["WORK"] + "/usb-list.json", "w"))
r = call({"cmd": "status"})
assert r["ok"] and r["result"]["state"] == "running", r
' && ok "usb-attach/usb-detach/usb-list with bad input: one-line errors, VM running" \
  || bad "control protocol bad input"
check 'python3 "$here/check_json_schema.py" "$here/../../docs/schemas/usb-list.schema.json" "$work/usb-list.json" >&2' \
	"usb-list matches docs/schemas/usb-list.schema.json"
v stop u
check '[ "$rc" -eq 0 ]' "stop u"
for i in $(seq 50); do [ -n "$kpid" ] && kill -0 "$kpid" 2>/dev/null || break; sleep 0.1; done
check '[ -n "$kpid" ] && ! kill -0 "$kpid" 2>/dev/null' "the keeper ended with the VM process (it held no device)"

echo "# the keeper alone: what it is told, and what it does at EOF"
# Devices it is told are held but that are not on this host: one line
# each at EOF; a name that is no sysfs device name is ignored.
out=$(python3 -c '
import os, socket, subprocess, sys
hold = os.open("/dev/null", os.O_RDONLY)   # takes fd 3 before the pair does
a, b = socket.socketpair()
os.dup2(b.fileno(), 3)          # the keeper reads fd 3
p = subprocess.Popen([sys.argv[1], "usb-keeper"], pass_fds=(3,),
                     stderr=subprocess.PIPE, text=True)
os.close(3)
b.close()
a.sendall(b"+9-7\n+9-8.1\n-9-8.1\n+../../etc\n+9-9;x\n")
a.close()
err = p.stderr.read()
print("rc=%d" % p.wait())
print(err, end="")' "$viv" 2>&1)
check 'grep -q "^rc=0" <<<"$out" && grep -q "USB 9-7: the VM process ended holding it, and its drivers could not be bound again" <<<"$out" &&
	[ "$(grep -c "^vivarium: USB" <<<"$out")" -eq 1 ]' \
	"the keeper at EOF: one line for the device still held (9-7), none for one given back or a bad name ($(tr '\n' ' ' <<<"$out"))"

echo "# a VM without the controller"
v create n --kernel "$kernel" --memory 64M --disk-size 1M --usb off
v start n --display none
for i in $(seq 50); do [ -S "$rundir/n.sock" ] && break; sleep 0.1; done
py "$rundir/n.sock" '
fd = os.open("/dev/null", os.O_RDWR)
refused({"cmd": "usb-attach", "device": "1-1", "vid": 1, "pid": 2, "speed": "480"}, fd, "no USB controller")
' && ok "usb-attach on a VM without USB: says how to get it" || bad "usb-attach without USB"
v stop n

echo "# vm.conf [usb0] with the device absent: the VM starts anyway"
printf '\n[usb0]\nhost=dead:beef\n' >>"$vms/n/vm.conf"
v show n
v start n --display none
check '[ "$rc" -eq 0 ]' "start with an absent [usb0] device (rc $rc: $err)"
sleep 1
check 'grep -q "USB dead:beef (\[usb0\]) not attached: no USB device dead:beef" "$vms/n/vm.log"' \
	"vm.log says [usb0] was not attached"
v stop n
printf '[usb1]\nhost=nonsense\n' >>"$vms/n/vm.conf"
v start n --display none
check '[ "$rc" -ne 0 ] && grep -q "\[usb1\] host" <<<"$err"' "a malformed [usb1] is refused at start ($err)"

if [ "$errors" -ne 0 ]; then
	for l in "$vms"/*/vm.log; do
		echo "# $l:"; tail -n 15 "$l" | sed 's/^/#   /'
	done
fi
echo "# $((total - errors))/$total passed"
[ "$errors" -eq 0 ]
