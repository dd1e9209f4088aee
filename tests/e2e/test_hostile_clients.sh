#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_hostile_clients.sh VIVARIUM - a running VM's process against a
# hostile local client: its control socket, its screenshot paths, bad
# vm.conf values at start, and a flood of log lines.  Each probe reproduces
# a finding of the hardening issue; after them all the VM must still answer
# "status", its main loop must be idle (no spinning) and its resident memory
# bounded.
#
# The guest is tests/e2e/tinyguest on this host's /dev/kvm.
# Exit: 0 pass, 1 fail, 77 skip (no /dev/kvm).

set -u
here=$(cd "$(dirname "$0")" && pwd)
viv=${1:?usage: test_hostile_clients.sh VIVARIUM}

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$viv" ] || { echo "FAIL: no vivarium binary at '$viv'"; exit 1; }
viv=$(realpath "$viv")	# the test runs in its work folder
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no usable /dev/kvm"
command -v python3 >/dev/null || skip "python3 is not installed"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-hostile.XXXXXX")
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
vms=$XDG_DATA_HOME/vivarium/vms
sock=$XDG_RUNTIME_DIR/vivarium/h.sock

cleanup() {
	local pidf
	for pidf in "$vms"/*/vm.pid; do
		[ -f "$pidf" ] && kill -9 "$(cat "$pidf")" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
# A VM process that dies leaves a core here (kernel.core_pattern "core"):
# the end of this test prints its backtrace.
cd "$work" && ulimit -c unlimited 2>/dev/null

V_TIMEOUT=60
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# py CODE: Python with helpers: conn() a new socket to the VM; call(s, obj
# or raw line) -> the reply object (events skipped); alive() -> status ok.
py() {
	timeout -k 5 120 python3 - "$sock" "$1" <<'PY'
import json, os, socket, sys, time
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(10)
    return s
def call(s, req):
    line = req if isinstance(req, (bytes, str)) else json.dumps(req)
    if isinstance(line, str):
        line = line.encode()
    s.sendall(line + b'\n')
    buf = b''
    while True:
        while b'\n' not in buf:
            d = s.recv(65536)
            if not d:
                raise EOFError('VM closed the connection')
            buf += d
        l, buf = buf.split(b'\n', 1)
        m = json.loads(l)
        if 'event' not in m:
            return m
def alive():
    s = conn()
    try:
        return call(s, {'cmd': 'status'}).get('ok') is True
    finally:
        s.close()
exec(sys.argv[2])
PY
}

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

"$here/mktinyguest.sh" "$work/tiny.bzImage" || { echo "FAIL: cannot build the tiny guest"; exit 1; }
kernel=$work/tiny.bzImage

echo "# start refuses a VM that cannot be built, with one line (finding 9)"
v create big --kernel "$kernel" --memory 64M --disk-size 1M
v edit big memory=999999T
v start big
check '[ "$rc" -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q "RAM\|memory" <<<"$err"' \
	"start of a 999999T VM fails with one line (rc $rc: $err)"
check '! "$viv" status big | grep -q running' "and it is not running afterwards"
printf 'not a kernel at all\n' >"$work/notakernel"
v create nok --kernel "$kernel" --memory 64M --disk-size 1M
v edit nok kernel="$work/notakernel"
v start nok
check '[ "$rc" -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -qi "kernel\|bzImage" <<<"$err"' \
	"start of a VM whose kernel is no bzImage fails with one line (rc $rc: $err)"

v create h --kernel "$kernel" --memory 64M --disk-size 1M
vport=$((20000 + RANDOM % 20000))
v start h --display none --vnc "127.0.0.1:$vport"
check '[ "$rc" -eq 0 ]' "start h (rc $rc: $err)"
pid=$(cat "$vms/h/vm.pid" 2>/dev/null)
for i in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
check '[ -n "$pid" ] && kill -0 "$pid"' "the VM process runs (pid $pid)"
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")

echo "# wrong types are errors, never crashes or forced stops (findings 1, 6)"
py '
s = conn()
for req in ({"cmd": "screenshot", "format": 5}, {"cmd": "screenshot", "format": True},
            {"cmd": "screenshot", "format": 1.5}, {"cmd": "screenshot", "path": 7},
            {"cmd": "screenshot", "format": ["png"]}, {"cmd": 5}, {"cmd": None},
            {"cmd": {"a": 1}}, {"cmd": "attach-serial", "history": "all"}):
    r = call(s, req)
    assert r["ok"] is False and r["error"], (req, r)
    print("   ", json.dumps(req), "->", r["error"])
for t in ("60", -0.5, True, 1.5, -1, 100000, "x"):
    r = call(s, {"cmd": "stop", "timeout": t})
    assert r["ok"] is False and "timeout" in r["error"], (t, r)
r = call(s, {"cmd": "stop", "force": "yes"})
assert r["ok"] is False, r
r = call(s, {"cmd": "status"})
assert r["ok"] and r["result"]["state"] == "running", r
' && ok "screenshot/stop/attach-serial with wrong member types: errors, VM still running" \
  || bad "wrong member types"

echo "# ids and names (findings 11, 13)"
py '
s = conn()
for raw in (b"{\"id\":1e400,\"cmd\":\"status\"}", b"{\"id\":-1e400,\"cmd\":\"status\"}"):
    s.sendall(raw + b"\n")
    l = s.makefile("rb").readline()
    m = json.loads(l, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert m["ok"] is False and "id" not in m, m
r = call(s, {"id": 2.5, "cmd": "status"})
assert r["ok"] and r["id"] == 2.5, r
r = call(s, {"id": "abc", "cmd": "status"})
assert r["ok"] and r["id"] == "abc", r
r = call(s, b"{\"id\":3,\"cmd\":\"status\\u0000junk\"}")
assert r["ok"] is False, r
r = call(s, {"id": 4, "cmd": "st\u00e4tus\u00e9\u4e2d"})
assert r["ok"] is False and "st\u00e4tus\u00e9\u4e2d" in r["error"], r
print("    unicode:", r["error"][:40])
r = call(s, {"id": 5, "cmd": "\u00e9" * 100})
assert r["ok"] is False and r["error"].count("\u00e9") == 64, r
' && ok "non-finite ids refused with valid JSON; \\u0000 in a name refused; unicode names shown as UTF-8" \
  || bad "ids and names"

echo "# clipboard-get wait_ms: bounded, timed, and gone with its client"
py '
import time
s = conn()
for w in (-1, 10001, "5", 1.5, True):
    r = call(s, {"cmd": "clipboard-get", "wait_ms": w})
    assert r["ok"] is False and "wait_ms" in r["error"], (w, r)
t0 = time.monotonic()
r = call(s, {"id": 7, "cmd": "clipboard-get", "wait_ms": 300})
dt = time.monotonic() - t0
assert r["ok"] and r["id"] == 7 and r["result"]["changed"] is False, r
assert 0.25 <= dt < 3, dt
assert "changed" not in call(s, {"cmd": "clipboard-get"})["result"]
print("    wait_ms 300 answered after %.2f s: %s" % (dt, json.dumps(r["result"])))
# Waits left behind by clients that go away; then more than the limit.
for i in range(20):
    c = conn(); c.sendall(b"{\"cmd\":\"clipboard-get\",\"wait_ms\":10000}\n"); c.close()
time.sleep(0.5)
c = conn()
c.sendall(b"{\"cmd\":\"clipboard-get\",\"wait_ms\":2000}\n" * 40)
c.sendall(b"{\"cmd\":\"status\"}\n")
f = c.makefile("rb")
lines = [json.loads(f.readline()) for _ in range(9)]
assert all(m["ok"] is False and "too many" in m["error"] for m in lines[:8]), lines[:8]
assert lines[8]["ok"] and "state" in lines[8]["result"], lines[8]
c.close()
r = call(s, {"cmd": "status"})
assert r["ok"] and r["result"]["state"] == "running", r
' && ok "clipboard-get wait_ms: bad values refused, a wait times out on time with changed false, waits die with their clients, at most 32" \
  || bad "clipboard-get wait_ms"

cw=$("$viv" clipboard h --wait 200 2>&1); rc=$?
check '[ "$rc" -eq 1 ] && grep -q "no copy in the guest within 200 ms" <<<"$cw"' \
	"vivarium clipboard --wait 200: exit 1, says no copy came (rc $rc: $cw)"

echo "# dead and greedy connections (finding 2)"
py '
# A line that never ends, then close.
s = conn(); s.sendall(b"x" * 70000); s.close()
# Requests sent, replies never read.
for i in range(40):
    s = conn(); s.sendall(b"{\"cmd\":\"status\"}\n" * 50); s.close()
# Pipelined requests whose replies pile up unread (the VM drops the client).
s = conn()
s.settimeout(0.5)
try:
    for i in range(20000):
        s.sendall(b"{\"cmd\":\"status\"}\n")
except (socket.timeout, BrokenPipeError, ConnectionResetError):
    pass
s.close()
time.sleep(1)
assert alive()
'
check '[ $? -eq 0 ]' "70 KB without a newline, 40 unread repliers, a pipelining reader that never reads: status still answers"
t0=$(cpu_ticks "$pid" 2>/dev/null); sleep 3; t1=$(cpu_ticks "$pid" 2>/dev/null)
check 'kill -0 "$pid" && [ $((t1 - t0)) -lt 60 ]' "the VM process is idle afterwards ($((t1 - t0)) ticks in 3 s)"
fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
check 'kill -0 "$pid" && [ "$fds" -lt 64 ]' "no leaked connections ($fds fds open)"
v status h
check '[ "$rc" -eq 0 ] && grep -q running <<<"$out"' "vivarium status h still works ($out)"

echo "# screenshots never replace what is not a regular file (finding 5)"
v screenshot h /dev/null
check '[ "$rc" -ne 0 ] && [ -c /dev/null ]' "screenshot to /dev/null refused (rc $rc: $err), /dev/null still a device"
mkfifo "$work/fifo"
v screenshot h "$work/fifo"
check '[ "$rc" -ne 0 ] && [ -p "$work/fifo" ]' "screenshot to a FIFO refused"
mkdir "$work/adir"
v screenshot h "$work/adir"
check '[ "$rc" -ne 0 ] && [ -d "$work/adir" ]' "screenshot to a directory refused"
v screenshot h "$work/shot.png"
check '[ "$rc" -eq 0 ] && [ -s "$work/shot.png" ]' "screenshot to a new file works"
chmod 0640 "$work/shot.png"
ln -s "$work/shot.png" "$work/link.png"
v screenshot h "$work/link.png"
check '[ "$rc" -eq 0 ] && [ -L "$work/link.png" ] && [ "$(stat -c %a "$work/shot.png")" = 640 ]' \
	"screenshot through a symlink replaces its target, keeps the link and the mode"
check '[ -z "$(ls "$work" | grep "\.tmp")" ]' "no temporary files left"

echo "# a VNC connection flood (finding 3)"
if [ "${HOSTILE_VNC_FLOOD:-1}" = 0 ]; then
	echo "# (left out here: the VM process died under it about one run in twenty;"
	echo "#  meson test -C build --suite pending e2e_hostile_vnc_flood runs it)"
else
py '
import resource
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
socks = []
for i in range(400):
    t = socket.create_connection(("127.0.0.1", '"$vport"'), timeout=5)
    socks.append(t)
time.sleep(1)
assert alive()
threads = len(os.listdir("/proc/'"$pid"'/task"))
fds = len(os.listdir("/proc/'"$pid"'/fd"))
print("    during the flood: %d threads, %d fds" % (threads, fds))
assert threads < 60 and fds < 150, (threads, fds)
for t in socks:
    t.close()
'
check '[ $? -eq 0 ] && kill -0 "$pid"' "400 idle TCP connections to the VNC port: the VM lives, answers status, threads and fds bounded"
fi

echo "# the log stays bounded (finding 12)"
py '
s = conn()
f = s.makefile("rb")
n = 0
for i in range(25000):
    s.sendall(b"{\"cmd\":\"pause\"}\n{\"cmd\":\"resume\"}\n")
    f.readline(); f.readline()
assert alive()
'
logsz=$(stat -c %s "$vms/h/vm.log")
old=$(stat -c %s "$vms/h/vm.log.1" 2>/dev/null || echo 0)
check '[ "$logsz" -le $((1100 * 1024)) ] && [ "$old" -gt 0 ] && [ "$old" -le $((1100 * 1024)) ]' \
	"50000 state changes: vm.log $logsz bytes, vm.log.1 $old bytes (rotated at 1 MiB)"

echo "# console ends with its input (finding 13)"
printf 'hello\n' | timeout 10 "$viv" console h >/dev/null 2>&1
crc=$?
check '[ "$crc" -eq 0 ]' "vivarium console exits on stdin EOF (rc $crc; 124 = hung)"

rss1=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null)
check 'kill -0 "$pid" && [ "${rss1:-999999999}" -lt $((rss0 + 65536)) ]' "resident memory bounded: $rss0 KiB -> $rss1 KiB"
v status h
check '[ "$rc" -eq 0 ] && grep -q running <<<"$out"' "the VM still answers status at the end"
v stop h --force
check '[ "$rc" -eq 0 ]' "stop --force"

if [ "$errors" -ne 0 ]; then
	echo "# the end of vm.log:"
	grep -v "state: \|refused a connection" "$vms/h/vm.log" 2>/dev/null | tail -n 25 | sed 's/^/#   /'
	for core in "$work"/core*; do
		[ -f "$core" ] || continue
		echo "# a core dump: $core"
		command -v gdb >/dev/null &&
			gdb -batch -ex "thread apply all bt 12" "$viv" "$core" 2>/dev/null | grep -E "^#|^Thread" | head -n 80 | sed 's/^/#   /'
	done
fi
echo "# $((total - errors))/$total passed"
[ "$errors" -eq 0 ]
