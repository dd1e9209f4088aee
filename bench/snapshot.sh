#!/bin/bash
# SPDX-License-Identifier: MIT
#
# snapshot.sh - how fast do vivarium and QEMU save and revert a running
# machine with a given amount of touched RAM?
#
# Usage:
#   bench/snapshot.sh [--memory MIB] [--touched MIB] [--reverts N]
#                     [--build DIR] [--dir DIR]
#
# On this host's /dev/kvm, in one run, the same amount of guest memory
# (default 2048 MiB, of which 1024 MiB touched: non-zero in every page):
#   vivarium  bench/snapshot.c: a test guest counting in RAM; the memory is
#             filled from outside; machine_save() then machine_revert() N
#             times (until the guest's counter moves again);
#   qemu      qemu-system-x86_64 -accel kvm, guest RAM a private mapping of
#             a file holding the same touched pages (memory-backend-file,
#             share=off: the guest sees them as its own), SeaBIOS with no
#             boot device (the guest idles); savevm then loadvm N times on
#             its monitor, into a qcow2 disk, each timed until the monitor
#             answers (QEMU stops the guest for all of savevm and loadvm).
# and prints, for each: save time (until the files are on disk, fsync
# included), the guest's pause, touched memory per second of each, revert
# time (median of N, min, max), and the saved state's size on disk.
#
# These machines are noisy: compare the two columns of one run, not runs.
# Exit: 0, 1 if a VMM failed, 77 if /dev/kvm or QEMU is missing.

set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
memory=2048
touched=1024
reverts=5
dir=

while [ $# -gt 0 ]; do
	case $1 in
	--memory) memory=$2; shift 2 ;;
	--touched) touched=$2; shift 2 ;;
	--reverts) reverts=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	-h|--help) sed -n '/^# Usage:/,/^# Exit:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "snapshot.sh: unknown option '$1'" >&2; exit 2 ;;
	esac
done
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 is not installed"; exit 77; }
[ -x "$build/bench/snapshot" ] || { echo "snapshot.sh: build first (ninja -C $build)" >&2; exit 1; }
if [ -z "$dir" ]; then
	dir=$(mktemp -d "${TMPDIR:-/var/tmp}/vivarium-snapbench.XXXXXX")
	trap 'rm -rf "$dir"' EXIT
fi

echo "# $memory MiB of guest memory, $touched MiB touched, $reverts reverts; files in $dir ($(df -h --output=fstype "$dir" | tail -n1 | tr -d ' '))"

# ---- vivarium -------------------------------------------------------------
sync	# each VMM starts with no writeback of the other's files in flight
"$build/bench/snapshot" --memory "$memory" --touched "$touched" --reverts "$reverts" "$dir" \
	>"$dir/viv.out" 2>"$dir/viv.err"
viv_rc=$?
[ $viv_rc -eq 0 ] || { echo "# vivarium failed (rc $viv_rc):"; sed 's/^/#   /' "$dir/viv.err"; }
viv() { awk -v k="$1" '$1 == k { print $2 }' "$dir/viv.out"; }

# ---- QEMU -------------------------------------------------------------------
python3 - "$dir/mem.img" "$memory" "$touched" <<'PY'
import struct, sys
path, memory, touched = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, 'wb') as f:
    f.truncate(memory << 20)
    f.seek(1 << 20)			# as bench/snapshot.c: above the first MiB
    for page in range(touched << 8):
        gpa = (1 << 20) + page * 4096
        f.write(struct.pack('<Q', ((gpa * 0x9e3779b97f4a7c15) & 0xffffffffffffffff) | 1) * 512)
PY
qemu-img create -q -f qcow2 "$dir/q.qcow2" 64M
sync
qemu-system-x86_64 -accel kvm -machine pc,memory-backend=mem -m "$memory" \
	-object memory-backend-file,id=mem,size="${memory}M",mem-path="$dir/mem.img",share=off \
	-nodefaults -display none -drive file="$dir/q.qcow2",if=virtio,format=qcow2 \
	-monitor unix:"$dir/mon",server=on,wait=off >"$dir/qemu.log" 2>&1 &
qpid=$!
python3 - "$dir/mon" "$reverts" >"$dir/qemu.out" 2>"$dir/qemu.err" <<'PY'
import socket, sys, time
path, reverts = sys.argv[1], int(sys.argv[2])
for _ in range(200):
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(path); break
    except OSError:
        time.sleep(0.05)
buf = b''
def until_prompt():
    global buf
    while b'(qemu) ' not in buf:
        d = s.recv(65536)
        if not d:
            raise SystemExit('monitor closed')
        buf += d
    out, buf = buf.split(b'(qemu) ', 1)
    return out.decode(errors='replace')
def cmd(c):
    s.sendall(c.encode() + b'\n')
    t0 = time.monotonic()
    out = until_prompt()
    return time.monotonic() - t0, out
until_prompt()
time.sleep(2)					# SeaBIOS gives up booting
t, out = cmd('savevm bench')
if 'Error' in out or 'error' in out:
    raise SystemExit('savevm: ' + out)
print('save_ms %.1f' % (t * 1000))
print('save_pause_ms %.1f' % (t * 1000))
ts = []
for i in range(reverts):
    t, out = cmd('loadvm bench')
    if 'rror' in out:
        raise SystemExit('loadvm: ' + out)
    ts.append(t * 1000)
ts.sort()
print('revert_ms_median %.1f' % ts[len(ts) // 2])
print('revert_ms_min %.1f' % ts[0])
print('revert_ms_max %.1f' % ts[-1])
s.sendall(b'quit\n')
PY
q_rc=$?
wait $qpid 2>/dev/null
[ $q_rc -eq 0 ] || { echo "# qemu failed (rc $q_rc):"; sed 's/^/#   /' "$dir/qemu.err" "$dir/qemu.log"; }
vmsize=$(qemu-img snapshot -l "$dir/q.qcow2" 2>/dev/null | awk '$2 == "bench" { print $3, $4 }')
qdisk=$(du -m "$dir/q.qcow2" | cut -f1)
qemu() { awk -v k="$1" '$1 == k { print $2 }' "$dir/qemu.out"; }
rate() { awk -v t="$touched" -v ms="$1" 'BEGIN { if (ms > 0) printf "%.2f", t / 1024 / (ms / 1000); else print "-" }'; }

printf '%-34s %14s %14s\n' "" vivarium qemu
printf '%-34s %14s %14s\n' "save, whole call (ms)" "$(viv save_ms)" "$(qemu save_ms)"
printf '%-34s %14s %14s\n' "  of which the guest paused (ms)" "$(viv save_pause_ms)" "$(qemu save_pause_ms)"
printf '%-34s %14s %14s\n' "  copying memory (ms)" "$(viv save_memory_copy_ms)" "-"
printf '%-34s %14s %14s\n' "touched memory / whole save (GiB/s)" "$(rate "$(viv save_ms)")" "$(rate "$(qemu save_ms)")"
printf '%-34s %14s %14s\n' "touched memory / pause (GiB/s)" "$(rate "$(viv save_pause_ms)")" "$(rate "$(qemu save_pause_ms)")"
printf '%-34s %14s %14s\n' "revert until the guest runs (ms)" "$(viv revert_ms_median)" "$(qemu revert_ms_median)"
printf '%-34s %14s %14s\n' "  min / max (ms)" "$(viv revert_ms_min) / $(viv revert_ms_max)" "$(qemu revert_ms_min) / $(qemu revert_ms_max)"
printf '%-34s %14s %14s\n' "memory on disk (MiB)" "$(viv ram_file_disk_mib)" "${qdisk} (qcow2; vmstate ${vmsize:-?})"
printf '%-34s %14s %14s\n' "device state (KiB)" "$(viv state_file_kib)" "(in vmstate)"
[ $viv_rc -eq 0 ] && [ $q_rc -eq 0 ]
