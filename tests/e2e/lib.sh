# SPDX-License-Identifier: MIT
#
# tests/e2e/lib.sh - what the library-level e2e scripts share; sourced
# (`. "$(dirname "$0")/lib.sh"`) once $viv (the vivarium binary) and $work
# (the test's scratch folder) are set, or at least before v() is called.
#
#   ok TEXT / bad TEXT     one TAP-style result line; counts into $total
#                          and $errors
#   check EXPR TEXT        ok if EXPR (eval'd) holds, bad otherwise
#   v ARGS...              run vivarium ($V_TIMEOUT s at most, default 30;
#                          stdin closed); sets $rc, $out (stdout) and $err
#                          (stderr)
#   wait_for FILE TEXT [COUNT] [SEC]
#                          until FILE holds TEXT (grep pattern) COUNT times
#                          (default 1), SEC seconds at most (default 30)
#   state NAME             the VM's state in `vivarium list --json`
#                          ("absent" if not listed)

errors=0
total=0
ok() { total=$((total + 1)); echo "ok - $*"; }
bad() { total=$((total + 1)); errors=$((errors + 1)); echo "not ok - $*"; }
check() { if eval "$1"; then ok "$2"; else bad "$2"; fi; }

v() {
	timeout -k 5 "${V_TIMEOUT:-30}" "$viv" "$@" >"$work/out" 2>"$work/err" </dev/null
	rc=$?
	out=$(cat "$work/out")
	err=$(cat "$work/err")
}

wait_for() {
	local i n
	for ((i = 0; i < ${4:-30} * 10; i++)); do
		n=$(grep -ac "$2" "$1" 2>/dev/null)
		[ "${n:-0}" -ge "${3:-1}" ] && return 0
		sleep 0.1
	done
	return 1
}

state() {
	"$viv" list --json | python3 -c "
import json, sys
print(next((v['state'] for v in json.load(sys.stdin) if v['name'] == '$1'), 'absent'))"
}
