#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_shares.sh VIVARIUM - a library VM's shared folders through the
# command line: `vivarium share add|list|remove`, `show` (text and JSON),
# `create --share`, clones, snapshots and saved states, with the tiny
# guest (tests/e2e/tinyguest) on this host's /dev/kvm.  A Linux guest
# mounting the share is the rig's test (test_desktop_in_rig.sh); here the
# virtio-9p devices are seen built (vm.log) and the saved states that hold
# them checked against the shares.
#
# Checks: add (default tag, --tag, --readonly, --guest-path), list and
# list --json (against docs/schemas/share-list.schema.json), show and show
# --json; every refusal (a missing folder, a file, a tag used twice, a
# guest path used twice or a system folder, a fifth share, a bad tag, an
# unknown VM or tag, a saved VM) is one line on stderr, a non-zero exit and
# vm.conf unchanged (byte for byte); create --share and its refusals
# leaving no VM; a start builds one virtio-9p device per share; add and
# remove on a running VM change vm.conf for its next start; a clone keeps
# the shares (a clone of a snapshot with memory resumes it only if the
# shares are the memory's); a snapshot with memory taken with other shares
# than the VM has now is refused by revert (stopped or running, nothing
# changed) and reverts once they are as they were.
#
# XDG_DATA_HOME and XDG_RUNTIME_DIR point into a temporary directory.
# Exit: 0 pass, 1 fail, 77 skip (no /dev/kvm).

set -u
umask 022
here=$(cd "$(dirname "$0")" && pwd)
viv=${1:?usage: test_shares.sh VIVARIUM}
schema=$here/../../docs/schemas/share-list.schema.json

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$viv" ] || { echo "FAIL: no vivarium binary at '$viv'"; exit 1; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no usable /dev/kvm"
command -v python3 >/dev/null || skip "python3 is not installed"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-shares.XXXXXX")
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
vms=$XDG_DATA_HOME/vivarium/vms

cleanup() {
	local pidf
	for pidf in "$vms"/*/vm.pid; do
		[ -f "$pidf" ] && kill -9 "$(cat "$pidf")" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# refuse DESC VM ARGS...: vivarium must fail with exactly one line on
# stderr and leave VM's vm.conf as it was.
refuse() {
	local desc=$1 vm=$2 before after
	shift 2
	before=$(md5sum <"$vms/$vm/vm.conf" 2>/dev/null)
	v "$@"
	after=$(md5sum <"$vms/$vm/vm.conf" 2>/dev/null)
	if [ "$rc" -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && [ "$before" = "$after" ]; then
		ok "$desc (rc $rc: $err)"
	else
		bad "$desc: rc $rc, vm.conf $([ "$before" = "$after" ] && echo unchanged || echo CHANGED), stderr: $err"
	fi
}

# tags NAME: the VM's share tags in order, from `share list --json`.
tags() {
	"$viv" share list "$1" --json | python3 -c 'import json, sys; print(" ".join(s["tag"] for s in json.load(sys.stdin)))'
}

echoes() { { printf '%s\n' "$2"; sleep 2; } | timeout 20 "$viv" console "$1" 2>/dev/null | tr -d '\r' | grep -q "^${2^^}$"; }

"$here/mktinyguest.sh" "$work/tiny.bzImage" || { echo "FAIL: cannot build the tiny guest"; exit 1; }
kernel=$work/tiny.bzImage
ready="TINY-GUEST: ready"
mkdir -p "$work/src" "$work/build out" "$work/d3" "$work/d4" "$work/d5"
echo data >"$work/file"

echo "# share add, list, show"
v create t --kernel "$kernel" --memory 32M --disk-size 16M --nic none
check '[ "$rc" -eq 0 ]' "create t ($err)"
v share list t
check '[ "$rc" -eq 0 ] && grep -q "no shared folders" <<<"$out"' "list of a VM without shares says so"
v share add t "$work/src"
check '[ "$rc" -eq 0 ] && grep -q "as .src." <<<"$out" && grep -q "/mnt/src" <<<"$out"' \
	"add with the default tag: the folder's name, guest path /mnt/src ($out$err)"
check '! grep -q "next start" <<<"$out"' "a stopped VM: no next-start note"
v share add t "$work/build out" --readonly --guest-path /data//build/
check '[ "$rc" -eq 0 ] && [ "$(tags t)" = "src build_out" ]' "add --readonly --guest-path: tag build_out ($err)"
python3 - "$vms/t/vm.conf" "$work" <<'PY' && ok "vm.conf: [share0] and [share1] as docs/vm-conf.md says" || bad "vm.conf [shareN]: $(cat "$vms/t/vm.conf")"
import configparser, sys
c = configparser.ConfigParser(interpolation=None)
c.read(sys.argv[1])
w = sys.argv[2]
assert dict(c['share0']) == {'path': w + '/src', 'tag': 'src', 'readonly': 'false'}, dict(c['share0'])
assert dict(c['share1']) == {'path': w + '/build out', 'tag': 'build_out', 'readonly': 'true',
                             'guest-path': '/data/build'}, dict(c['share1'])
PY
v share list t --json
printf '%s\n' "$out" >"$work/list.json"
check 'python3 "$here/check_json_schema.py" "$schema" "$work/list.json" >&2' "share list --json matches docs/schemas/share-list.schema.json"
check 'python3 -c "
import json, sys
l = json.load(open(sys.argv[1]))
assert l[1] == {\"tag\": \"build_out\", \"path\": sys.argv[2] + \"/build out\", \"readonly\": True, \"guest_path\": \"/data/build\"}, l
assert l[0][\"guest_path\"] == \"/mnt/src\" and l[0][\"readonly\"] is False
" "$work/list.json" "$work"' "list --json: tag, path, readonly, guest_path"
v share list t
check 'grep -q "^build_out *ro *\/data\/build *$work\/build out$" <<<"$out"' "share list: a table ($out)"
v show t
check 'grep -q "^share: *.src. = $work/src (read-write; guest path /mnt/src)" <<<"$out" &&
	grep -q "^share: *.build_out. = $work/build out (read-only; guest path /data/build)" <<<"$out"' \
	"show lists the shares ($out)"
v show t --json
check 'python3 -c "
import json, sys
s = json.loads(sys.argv[1])[\"shares\"]
assert [x[\"tag\"] for x in s] == [\"src\", \"build_out\"] and s[1][\"readonly\"] and s[1][\"guest_path\"] == \"/data/build\"
" "$out"' "show --json has the shares"

echo "# refusals: one line, vm.conf unchanged"
refuse "a missing host folder" t share add t "$work/nonexistent"
check 'grep -q "No such file" <<<"$err"' "says the folder is missing"
refuse "a file where a folder is needed" t share add t "$work/file" --tag f
check 'grep -q "not a folder" <<<"$err"' "says it is not a folder"
refuse "a tag used twice (the default one)" t share add t "$work/d3/../src"
check 'grep -q -- "--tag" <<<"$err"' "says how to choose another tag"
refuse "a tag used twice (--tag)" t share add t "$work/d3" --tag build_out
refuse "a guest path used twice" t share add t "$work/d3" --guest-path /data/build
refuse "a guest path over a system folder" t share add t "$work/d3" --guest-path /usr
refuse "a relative guest path" t share add t "$work/d3" --guest-path mnt/x
refuse "a tag with a space" t share add t "$work/d3" --tag "a b"
refuse "a tag with a slash" t share add t "$work/d3" --tag a/b
refuse "a tag too long for a mount tag" t share add t "$work/d3" --tag "$(printf 'x%.0s' {1..32})"
refuse "an unknown VM" t share add nosuch "$work/d3"
refuse "remove of an unknown tag" t share remove t nosuch
check 'grep -q "src" <<<"$err" && grep -q "build_out" <<<"$err"' "names the tags there are"
v share add t "$work/d3"
v share add t "$work/d4"
check '[ "$(tags t)" = "src build_out d3 d4" ]' "four shares"
refuse "a fifth share" t share add t "$work/d5"
check 'grep -q "remove one" <<<"$err"' "says to remove one"
v share remove t d3
check '[ "$rc" -eq 0 ] && [ "$(tags t)" = "src build_out d4" ] && ! grep -q "^\[share2\]" "$vms/t/vm.conf"' \
	"remove: its group goes, the others keep theirs ($out$err)"
v share remove t d4
check '[ "$rc" -eq 0 ] && [ "$(tags t)" = "src build_out" ]' "remove d4"
v share add t "$work/d3" --tag no-such-dir-later
rmdir "$work/d3"
v show t
check '[ "$rc" -eq 0 ] && grep -q "no-such-dir-later" <<<"$out"' "show of a VM whose shared folder has gone"
v start t
check '[ "$rc" -ne 0 ] && grep -q "$work/d3" <<<"$err" && [ "$(state t)" = stopped ]' \
	"start with a shared folder gone: refused, naming it ($err)"
v share remove t no-such-dir-later
mkdir "$work/d3"

echo "# create --share"
v create c1 --kernel "$kernel" --nic none --share "$work/src,tag=code,readonly" --share "$work/d4"
check '[ "$rc" -eq 0 ] && [ "$(tags c1)" = "code d4" ]' "create --share: two shares ($err)"
check 'grep -q "^readonly=true" "$vms/c1/vm.conf"' "readonly kept"
for bad in "$work/nonexistent" "$work/file" "$work/src,tag=x y" "$work/src,bogus"; do
	v create c2 --kernel "$kernel" --share "$bad"
	check '[ "$rc" -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && [ ! -e "$vms/c2" ]' "create --share '$bad' refused, no VM made ($err)"
done
v create c2 --kernel "$kernel" --share "$work/src" --share "$work/d3/../src"
check '[ "$rc" -ne 0 ] && grep -q "both have the tag" <<<"$err" && [ ! -e "$vms/c2" ]' "create with a tag twice refused ($err)"
v delete c1 --yes

echo "# a running VM"
v start t
check '[ "$rc" -eq 0 ] && wait_for "$vms/t/serial.log" "$ready"' "start t with two shares ($err)"
check 'grep -q "shared folder .src.: $work/src, virtio-9p at PCI 00:14.0" "$vms/t/vm.log" &&
	grep -q "shared folder .build_out.: $work/build out (read-only), virtio-9p at PCI 00:15.0" "$vms/t/vm.log"' \
	"vm.log: a virtio-9p device per share at 00:14.0 and 00:15.0"
v snapshot take t s1
check '[ "$rc" -eq 0 ] && [ "$(state t)" = running ]' "snapshot take of the running VM (memory with src, build_out) ($err)"
v share add t "$work/d3"
check '[ "$rc" -eq 0 ] && grep -q "takes effect at its next start" <<<"$out" && grep -q "^tag=d3" "$vms/t/vm.conf"' \
	"add on a running VM: vm.conf changes, the next start will see it ($out)"
v snapshot revert t s1
check '[ "$rc" -eq 0 ] && [ "$(state t)" = running ] && echoes t after-revert' \
	"revert of the running VM: it runs with the shares it started with, as the snapshot does ($err)"
check '[ "$(tags t)" = "src build_out d3" ]' "the revert leaves vm.conf's shares as they are now"
v stop t --force
check '[ "$rc" -eq 0 ] && [ "$(state t)" = stopped ]' "stop t"

echo "# snapshots: shares are configuration, not snapshot state"
cp "$vms/t/vm.conf" "$work/conf.before"
cp "$vms/t/snapshots/index.json" "$work/index.before"
refuse "revert of a stopped VM to memory saved with other shares" t snapshot revert t s1
check 'grep -q "saved with the shared folders .src., .build_out. (readonly), and the VM now has the shared folders .src., .build_out. (readonly), .d3." <<<"$err"' \
	"says what the snapshot had and what the VM has"
check 'cmp -s "$work/index.before" "$vms/t/snapshots/index.json" && [ "$(state t)" = stopped ] && [ ! -e "$vms/t/saved.state" ]' \
	"nothing changed: index, no saved state"
v share remove t d3
v snapshot revert t s1
check '[ "$rc" -eq 0 ] && [ "$(state t)" = saved ]' "with the shares as they were, the revert works: saved at s1 ($out$err)"
refuse "share add on a VM holding a saved state" t share add t "$work/d3"
check 'grep -q "discard" <<<"$err"' "says how to drop the state"
refuse "share remove on a VM holding a saved state" t share remove t src
v start t
check '[ "$rc" -eq 0 ] && echoes t after-resume && grep -q "resumed from its saved state" "$vms/t/vm.log"' \
	"start resumes the snapshot with its shares ($err)"
v stop t --force
# A saved state whose shares were changed by hand: a clear refusal.
v start t
wait_for "$vms/t/serial.log" "$ready"
v save t
check '[ "$rc" -eq 0 ] && [ "$(state t)" = saved ]' "save t ($err)"
sed -i 's/^tag=build_out$/tag=renamed/' "$vms/t/vm.conf"
v start t
check '[ "$rc" -ne 0 ] && grep -q "saved with the shared folders .src., .build_out." <<<"$err" && grep -q "renamed" <<<"$err" && [ "$(state t)" = saved ]' \
	"start of a saved VM whose shares were edited by hand: refused in one line, the state kept ($err)"
sed -i 's/^tag=renamed$/tag=build_out/' "$vms/t/vm.conf"
v discard t

# A running VM whose shares differ from the snapshot's memory.
v share add t "$work/d3"
v start t
check '[ "$rc" -eq 0 ] && wait_for "$vms/t/serial.log" "$ready"' "start t with three shares"
check 'grep -q "shared folder .d3.: .*00:16.0" "$vms/t/vm.log"' "the third share at 00:16.0"
v snapshot revert t s1
check '[ "$rc" -ne 0 ] && grep -q "restart the VM" <<<"$err" && [ "$(state t)" = running ] && echoes t still-running' \
	"revert of a running VM with other shares than the snapshot's memory: refused, the VM runs on ($err)"
v stop t --force

echo "# clones keep the shares"
v clone t t2
check '[ "$rc" -eq 0 ] && [ "$(tags t2)" = "src build_out d3" ]' "a clone has the same shares ($err)"
v share list t2 --json
check 'grep -q "\"path\" : \"$work/build out\"" <<<"$out"' "pointing at the same host folders"
v share remove t2 d3
check '[ "$(tags t2)" = "src build_out" ] && [ "$(tags t)" = "src build_out d3" ]' "the clone's shares are its own"
# A clone of a snapshot with memory resumes it only with the same shares.
v clone t t3 --snapshot s1
check '[ "$rc" -eq 0 ] && grep -q "other shared folders" <<<"$out" && [ "$(state t3)" = stopped ]' \
	"a clone of a snapshot whose memory had other shares boots from its disks, saying so ($out$err)"
v share remove t d3
v clone t t4 --snapshot s1
check '[ "$rc" -eq 0 ] && [ "$(state t4)" = saved ]' "with the same shares it is saved at the snapshot ($out$err)"
v start t4
check '[ "$rc" -eq 0 ] && echoes t4 clone-resumed && grep -q "resumed from its saved state" "$vms/t4/vm.log"' \
	"and resumes it ($err)"
v stop t4 --force

echo "1..$total"
[ "$errors" -eq 0 ] && echo "# all $total checks passed" || echo "# $errors of $total checks failed"
[ "$errors" -eq 0 ]
