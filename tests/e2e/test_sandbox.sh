#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_sandbox.sh VIVARIUM - the VM process's sandbox, on this host's
# /dev/kvm with the tiny guest (tests/e2e/tinyguest): what a sandboxed VM
# process is, and what it cannot do.
#
# Checks:
#  - a library VM (NAT card, VNC on a Unix socket) runs sandboxed by
#    default: vm.log says so; every thread has no_new_privs, no
#    capabilities and seccomp filters, the vCPU thread two; it answers,
#    takes, reverts and deletes snapshots, saves and resumes, takes
#    screenshots (`vivarium screenshot` anywhere);
#  - Landlock: a control-socket screenshot to a path outside the VM's
#    folder is refused (inside it works), and the test hook
#    VIVARIUM_TEST_SANDBOX_VIOLATION=open:PATH, run on the vCPU thread,
#    cannot open a file outside while it can open the VM's vm.conf;
#  - a forbidden call from a device thread (the hook: execve on vcpu0)
#    kills the VM process, and vm.log names execve and the thread;
#    `vivarium run` likewise dies of SIGSYS with the line on stderr;
#  - a unix: VNC socket outside the runtime folder is removed when the
#    VM ends (SIGTERM, kill -9, stop --force: by the watcher process), a
#    stale one is replaced at start, a regular file there is refused;
#  - sandbox=off: no filters, and the hook does nothing; coredump=on is
#    logged;
#  - run-as=nobody (when root): the VM process is uid/gid nobody, still
#    sandboxed, answers status and screenshots; save and snapshot take are
#    refused with one line; with tpm=on swtpm runs as nobody too, its
#    tpm/ nobody's; without run-as vm.log says it runs as root;
#    `vivarium run --run-as nobody` is uid/gid nobody with the sandbox on
#    and off, and --run-as root or an unknown user is refused (exit 2);
#  - `vivarium doctor` reports seccomp, Landlock and no_new_privs, and its
#    JSON agrees with the kernel.
#
# XDG_DATA_HOME and XDG_RUNTIME_DIR point into a temporary directory.
# Exit: 0 pass, 1 fail, 77 skip (no /dev/kvm, no seccomp).

set -u
here=$(cd "$(dirname "$0")" && pwd)
viv=${1:?usage: test_sandbox.sh VIVARIUM}

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$viv" ] || { echo "FAIL: no vivarium binary at '$viv'"; exit 1; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no usable /dev/kvm"
command -v python3 >/dev/null || skip "python3 is not installed"
grep -q '^Seccomp:' /proc/self/status || skip "no seccomp in this kernel"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-sandbox.XXXXXX")
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
vms=$XDG_DATA_HOME/vivarium/vms
runpid=

cleanup() {
	local pidf
	for pidf in "$vms"/*/vm.pid; do
		[ -f "$pidf" ] && kill -9 "$(cat "$pidf")" 2>/dev/null
	done
	[ -n "$runpid" ] && kill -9 "$runpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# gone PID: wait up to 10 s for PID to end.
gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# ctl NAME PY: Python with a connected control socket `s` and call().
ctl() {
	python3 - "$XDG_RUNTIME_DIR/vivarium/$1.sock" "$2" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(15)
f = s.makefile('rwb', buffering=0)
def call(cmd, **args):
    f.write((json.dumps(dict(id=1, cmd=cmd, **args)) + '\n').encode())
    while True:
        m = json.loads(f.readline())
        if 'event' not in m:
            return m
exec(sys.argv[2])
PY
}

# threads_sandboxed PID: every thread has no_new_privs, CapEff 0 and at
# least one seccomp filter; prints "vcpu0 N" (its filter count).
threads_sandboxed() {
	local t ok=0 n
	for t in /proc/"$1"/task/*; do
		n=$(awk '/^Seccomp_filters:/ { print $2 }' "$t/status" 2>/dev/null)
		grep -q '^NoNewPrivs:[[:space:]]*1' "$t/status" &&
			grep -q '^CapEff:[[:space:]]*0*$' "$t/status" &&
			[ "${n:-0}" -ge 1 ] || { echo "thread $(cat "$t/comm" 2>/dev/null) not sandboxed"; ok=1; }
		[ "$(cat "$t/comm" 2>/dev/null)" = vcpu0 ] && echo "vcpu0 $n"
	done
	return $ok
}

"$here/mktinyguest.sh" "$work/tiny.bzImage" || { echo "FAIL: cannot build the tiny guest"; exit 1; }
kernel=$work/tiny.bzImage
ready="TINY-GUEST: ready"

echo "# a library VM, sandboxed by default"
v create sb --kernel "$kernel" --memory 64M --disk-size 16M
# The VNC socket outside the runtime folder, where Landlock forbids the
# VM process to remove it.
vsock=$work/vnc/sb-vnc.sock
mkdir -p "$work/vnc"
v edit sb "vnc=unix:$vsock"
v start sb
check '[ "$rc" -eq 0 ] && wait_for "$vms/sb/serial.log" "$ready"' "start: the guest runs ($err)"
pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
check 'grep -q "sandbox: seccomp allow-lists on every thread ([0-9]* running), Landlock ABI [0-9]*, no_new_privs, .*no core dumps" "$vms/sb/vm.log"' \
	"vm.log: $(grep -o 'sandbox: .*' "$vms/sb/vm.log" | head -n1)"
tinfo=$(threads_sandboxed "$pid")
check '[ $? -eq 0 ] && grep -q "^vcpu0 2$" <<<"$tinfo"' \
	"every thread: no_new_privs, no capabilities, seccomp; vcpu0 has its own filter too ($(tr '\n' ' ' <<<"$tinfo"))"
v show sb
check 'grep -q "^sandbox: *on" <<<"$out"' "show: sandbox on"

echo "# what it still does"
v status sb
check '[ "$rc" -eq 0 ]' "status answers"
v screenshot sb "$work/shot.png"
check '[ "$rc" -eq 0 ] && [ -s "$work/shot.png" ]' "vivarium screenshot outside the VM's folder (the CLI makes the file) ($err)"
v snapshot take sb s1
v snapshot take sb s2
check '[ "$rc" -eq 0 ]' "snapshot take while running ($err)"
v snapshot revert sb s1
check '[ "$rc" -eq 0 ]' "snapshot revert while running ($err)"
# The rebuild goes on after the reply; a pause meanwhile is lost (a race
# of machine_pause() with a rebuild, sandbox or not): let it finish.
sleep 1
v snapshot delete sb s2
check '[ "$rc" -eq 0 ]' "snapshot delete while running ($err)"
v save sb
check '[ "$rc" -eq 0 ] && gone "$pid"' "save ($err)"
v start sb
check '[ "$rc" -eq 0 ] && grep -q "resumed from its saved state" "$vms/sb/vm.log"' "start resumes the saved state ($err)"
pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)

echo "# the VNC socket outside the runtime folder"
# sock_gone: up to 5 s for the watcher to remove it.
sock_gone() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ -e "$vsock" ] || return 0
		sleep 0.1
	done
	return 1
}
check '[ -S "$vsock" ]' "a running VM's VNC socket is there"
kill -TERM "$pid"
check 'gone "$pid" && sock_gone' "SIGTERM: the VNC socket is removed when the VM ends"
v start sb
pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
check '[ "$rc" -eq 0 ] && [ -S "$vsock" ]' "start again on the same path works ($err)"
kill -9 "$pid"
check 'gone "$pid" && sock_gone' "kill -9: the socket is removed all the same"
# A stale socket (its server gone, nobody removed it) is replaced at start.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$vsock"
v start sb
pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
check '[ "$rc" -eq 0 ] && [ -S "$vsock" ]' "a stale socket file is replaced at start ($err)"
v stop sb --force
check '[ "$rc" -eq 0 ] && gone "$pid" && sock_gone' "stop --force: the socket is removed ($err)"
echo "not a socket" >"$vsock"
v start sb
check '[ "$rc" -ne 0 ] && grep -q "exists and is not a socket" <<<"$err" && grep -q "not a socket" "$vsock"' \
	"a regular file at the path is refused and left alone ($err)"
rm -f "$vsock"
v start sb
pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
check '[ "$rc" -eq 0 ]' "start ($err)"

echo "# Landlock"
ctl sb "
r = call('screenshot', path='$work/outside.png')
print('outside:', r)
assert not r['ok'] and 'Permission denied' in r['error'], r
r = call('screenshot', path='$vms/sb/inside.png')
print('inside:', r)
assert r['ok'], r
" >"$work/ctl.out" 2>&1
check '[ $? -eq 0 ] && [ ! -e "$work/outside.png" ] && [ -s "$vms/sb/inside.png" ]' \
	"a control-socket screenshot: refused outside the VM's folder, written inside ($(head -c 300 "$work/ctl.out"))"
v stop sb --force
gone "$pid"
echo "a secret" >"$work/secret"
VIVARIUM_TEST_SANDBOX_VIOLATION="open:$work/secret" v start sb
pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
check 'wait_for "$vms/sb/vm.log" "sandbox test: open $work/secret: Permission denied" 1 10' \
	"the vCPU thread cannot open a file outside ($(grep -o 'sandbox test: .*' "$vms/sb/vm.log" | tail -n1))"
v stop sb --force
gone "$pid"
VIVARIUM_TEST_SANDBOX_VIOLATION="open:$vms/sb/vm.conf" v start sb
pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
check 'wait_for "$vms/sb/vm.log" "sandbox test: open $vms/sb/vm.conf: opened" 1 10' \
	"it can open the VM's own vm.conf"
v stop sb --force
gone "$pid"

echo "# a forbidden call"
VIVARIUM_TEST_SANDBOX_VIOLATION=execve v start sb
pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
check 'wait_for "$vms/sb/vm.log" "forbidden system call execve (59) in thread .vcpu0.: the VM process stops" 1 10 && gone "$pid"' \
	"execve on vcpu0 kills the VM process; vm.log: $(grep -o 'sandbox: forbidden.*' "$vms/sb/vm.log" | tail -n1)"
v status sb
check 'grep -q "stopped" <<<"$out$err"' "the VM is not running afterwards ($out$err)"
VIVARIUM_TEST_SANDBOX_VIOLATION=execve timeout -k 5 30 "$viv" run --kernel "$kernel" --memory 32M \
	--serial "file:$work/run-serial.log" --nic virtio,nat </dev/null >"$work/run.out" 2>&1
rc=$?
check '[ "$rc" -eq 159 ] && grep -q "forbidden system call execve (59) in thread .vcpu0." "$work/run.out"' \
	"vivarium run dies of SIGSYS (status $rc), the line on stderr: $(head -c 200 "$work/run.out")"

echo "# vivarium run, sandboxed"
timeout -k 5 60 "$viv" run --kernel "$kernel" --memory 32M --cpus 2 --serial "file:$work/run2.log" \
	--nic e1000,nat </dev/null >"$work/run2.out" 2>&1 &
runpid=$!
wait_for "$work/run2.log" "$ready" 1 20
rpid=$(pgrep -P "$runpid" -x vivarium || echo "$runpid")
tinfo=$(threads_sandboxed "$rpid")
check '[ $? -eq 0 ] && grep -q "^vcpu0 2$" <<<"$tinfo"' "run: every thread sandboxed ($(tr '\n' ' ' <<<"$tinfo"))"
kill -TERM "$rpid"
wait "$runpid"
rc=$?
check '[ "$rc" -eq 143 ]' "run stops cleanly on SIGTERM (status $rc)"
runpid=

echo "# sandbox=off, coredump=on"
v edit sb sandbox=off
VIVARIUM_TEST_SANDBOX_VIOLATION=execve v start sb
pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
sleep 1
check '[ "$rc" -eq 0 ] && kill -0 "$pid" && grep -q "^Seccomp:[[:space:]]*0" /proc/"$pid"/status &&
	grep -q "sandbox: off" "$vms/sb/vm.log"' "sandbox=off: no filters, the hook does nothing, vm.log says so"
v stop sb --force
gone "$pid"
v edit sb sandbox=on coredump=on
v start sb
pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
check 'grep -q "core dumps possible (coredump=on)" "$vms/sb/vm.log"' "coredump=on is logged"
v stop sb --force
gone "$pid"
v edit sb sandbox=maybe
check '[ "$rc" -ne 0 ] && grep -q "use on or off" <<<"$err"' "edit sandbox=maybe is refused ($err)"

echo "# run-as"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	v start sb
	pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
	check 'grep -q "running as root (uid 0), without capabilities; vm.conf run-as=USER" "$vms/sb/vm.log"' \
		"started as root without run-as: vm.log says so in one line"
	v stop sb --force
	gone "$pid"
	v edit sb run-as=root
	check '[ "$rc" -ne 0 ] && grep -q "is root" <<<"$err"' "edit run-as=root is refused ($err)"
	v edit sb run-as=no-such-user-here
	check '[ "$rc" -ne 0 ] && grep -q "no such user" <<<"$err"' "edit run-as=UNKNOWN is refused ($err)"
	v edit sb run-as=nobody
	v show sb
	check 'grep -q "^run-as: *nobody" <<<"$out"' "show: run-as nobody"
	# With a TPM: swtpm (which parses the guest's TPM commands) runs as
	# nobody too, in a tpm/ made nobody's inside root's VM folder.
	swtpm_bin=$(command -v swtpm || true)
	if [ -n "$swtpm_bin" ]; then
		v edit sb tpm=on
		# What a hostile swtpm of an earlier run could leave in tpm/:
		# a hard link and a symlink to root's files.  Neither is
		# given to nobody.
		echo root >"$work/root-a" && echo root >"$work/root-b"
		mkdir -p "$vms/sb/tpm" && ln "$work/root-a" "$vms/sb/tpm/hard" &&
			ln -s "$work/root-b" "$vms/sb/tpm/soft"
	fi
	v start sb
	pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
	nu=$(id -u nobody) ng=$(id -g nobody)
	check '[ "$rc" -eq 0 ] && wait_for "$vms/sb/serial.log" "$ready" &&
		grep -Eq "^Uid:[[:space:]]+$nu[[:space:]]+$nu[[:space:]]+$nu[[:space:]]+$nu$" /proc/"$pid"/status &&
		grep -Eq "^Gid:[[:space:]]+$ng[[:space:]]+$ng[[:space:]]+$ng[[:space:]]+$ng$" /proc/"$pid"/status &&
		grep -q "^CapEff:[[:space:]]*0*$" /proc/"$pid"/status' \
		"run-as=nobody: the guest runs, the VM process is uid/gid $nu/$ng ($err; $(grep -E '^(Uid|Gid)' /proc/"$pid"/status 2>/dev/null | tr '\n\t' '  '))"
	tinfo=$(threads_sandboxed "$pid")
	check '[ $? -eq 0 ] && grep -q "running as nobody (uid $nu, gid $ng)" "$vms/sb/vm.log"' \
		"run-as: every thread still sandboxed, vm.log says the user ($(tr '\n' ' ' <<<"$tinfo"))"
	v status sb
	check '[ "$rc" -eq 0 ] && grep -q running <<<"$out"' "run-as: status answers ($out)"
	if [ -n "$swtpm_bin" ]; then
		spid=$(pgrep -P "$pid" -x swtpm | head -n1)
		check '[ -n "$spid" ] && grep -Eq "^Uid:[[:space:]]+$nu[[:space:]]+$nu[[:space:]]+$nu[[:space:]]+$nu$" /proc/"$spid"/status &&
			[ "$(stat -c %u "$vms/sb/tpm")" = "$nu" ] && [ "$(stat -c %u "$vms/sb/tpm/tpm2-00.permall")" = "$nu" ] &&
			[ "$(stat -c %u "$vms/sb")" = 0 ]' \
			"run-as: swtpm runs as nobody too (pid ${spid:-none}), tpm/ and its state are nobody's, the VM folder stays root's"
		check '[ "$(stat -c %u "$work/root-a")" = 0 ] && [ "$(stat -c %u "$work/root-b")" = 0 ]' \
			"run-as: a hard link and a symlink in tpm/ did not give root's files to nobody"
	else
		echo "# swtpm is not installed (apt-get install swtpm): run-as's TPM check left out"
	fi
	v screenshot sb "$work/shot-nobody.png"
	check '[ "$rc" -eq 0 ] && [ -s "$work/shot-nobody.png" ]' "run-as: vivarium screenshot works ($err)"
	v save sb
	check '[ "$rc" -ne 0 ] && grep -q "runs as nobody (vm.conf run-as), which cannot write" <<<"$err" && kill -0 "$pid"' \
		"run-as: save is refused with one line, the VM runs on ($err)"
	v snapshot take sb s9
	check '[ "$rc" -ne 0 ] && grep -q "runs as nobody" <<<"$err"' "run-as: snapshot take is refused likewise ($err)"
	v stop sb --force
	check '[ "$rc" -eq 0 ] && gone "$pid"' "run-as: stop --force ($err)"
	v start sb
	pid=$(cat "$vms/sb/vm.pid" 2>/dev/null)
	check '[ "$rc" -eq 0 ] && wait_for "$vms/sb/serial.log" "$ready"' "run-as: a second start (the stale control socket replaced) ($err)"
	v stop sb --force
	gone "$pid"
	v edit sb run-as= tpm=off
	v show sb
	check '! grep -q "^run-as" <<<"$out"' "edit run-as= removes it"
	v doctor
	check 'grep -Eq "^  user +root: VM processes keep uid 0" <<<"$out"' "doctor says VM processes run as root here"
	# vivarium run --run-as, with the sandbox and without.
	for sbx in on off; do
		timeout -k 5 60 "$viv" run --kernel "$kernel" --memory 32M --serial "file:$work/runas-$sbx.log" \
			--sandbox "$sbx" --run-as nobody ${swtpm_bin:+--tpm} </dev/null >"$work/runas-$sbx.out" 2>&1 &
		runpid=$!
		wait_for "$work/runas-$sbx.log" "$ready" 1 20
		rpid=$(pgrep -P "$runpid" -x vivarium || echo "$runpid")
		check 'grep -Eq "^Uid:[[:space:]]+$nu[[:space:]]+$nu[[:space:]]+$nu[[:space:]]+$nu$" /proc/"$rpid"/status &&
			grep -Eq "^Gid:[[:space:]]+$ng[[:space:]]+$ng[[:space:]]+$ng[[:space:]]+$ng$" /proc/"$rpid"/status' \
			"run --run-as nobody --sandbox $sbx: the guest runs, the process is uid/gid $nu/$ng ($(grep -E '^(Uid|Gid)' /proc/"$rpid"/status 2>/dev/null | tr '\n\t' '  '))"
		if [ -n "$swtpm_bin" ]; then
			spid=$(pgrep -P "$rpid" -x swtpm | head -n1)
			check '[ -n "$spid" ] && grep -Eq "^Uid:[[:space:]]+$nu[[:space:]]+$nu[[:space:]]+$nu[[:space:]]+$nu$" /proc/"$spid"/status' \
				"run --run-as nobody --tpm --sandbox $sbx: swtpm runs as nobody too (pid ${spid:-none})"
			tdir=$(readlink "/proc/$spid/cwd" 2>/dev/null || true)
		fi
		kill -TERM "$rpid"
		wait "$runpid"
		rc=$?
		check '[ "$rc" -eq 143 ]' "run --run-as nobody --sandbox $sbx stops on SIGTERM (status $rc)"
		if [ -n "$swtpm_bin" ]; then
			# --tpm's temporary state goes with the process (its
			# survivor removes it: the sandbox keeps /tmp out of reach).
			for _ in $(seq 50); do [ -n "$tdir" ] && [ ! -e "$tdir" ] && break; sleep 0.1; done
			check '[ -n "$tdir" ] && [ ! -e "$tdir" ]' "run --tpm --sandbox $sbx: its temporary TPM state (${tdir:-not found}) is removed when it ends"
		fi
		runpid=
	done
	out=$("$viv" run --kernel "$kernel" --memory 32M --run-as root 2>&1 </dev/null); rc=$?
	check '[ "$rc" -eq 2 ] && grep -q "is root" <<<"$out"' "run --run-as root is refused with one line ($out)"
	out=$("$viv" run --kernel "$kernel" --memory 32M --run-as no-such-user-here 2>&1 </dev/null); rc=$?
	check '[ "$rc" -eq 2 ] && grep -q "no such user" <<<"$out"' "run --run-as UNKNOWN is refused with one line ($out)"
else
	echo "# (not root or no user nobody: run-as not tried)"
fi

echo "# doctor"
v doctor
check 'grep -Eq "^  seccomp +filters, TSYNC, TRAP" <<<"$out" && grep -Eq "^  Landlock +" <<<"$out" &&
	grep -Eq "^  no_new_privs +yes" <<<"$out"' "doctor prints seccomp, Landlock, no_new_privs"
abi=$(python3 -c 'import ctypes; print(ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1))')
"$viv" doctor --json >"$work/doctor.json"
check 'python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))[\"sandbox\"]
abi = int(sys.argv[2])
assert s[\"seccomp\"] and s[\"seccomp_tsync\"] and s[\"no_new_privs\"] and s[\"usable\"], s
assert s[\"landlock_abi\"] == (abi if abi > 0 else None), (s, abi)
" "$work/doctor.json" "$abi"' "doctor --json: the sandbox object agrees with the kernel (Landlock ABI $abi)"

echo "$((total - errors))/$total passed"
[ "$errors" -eq 0 ]
