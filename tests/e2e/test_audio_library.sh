#!/bin/bash
# SPDX-License-Identifier: MIT
#
# test_audio_library.sh VIVARIUM - the sound card through the VM library,
# on this host's /dev/kvm, against a real PulseAudio server the test starts
# (a null sink, a unix socket in the test's folder, PULSE_SERVER).
#
# Checks: create writes audio=pa while the server answers and audio=none
# (the card, silent) without one, --audio off none, --audio bad nothing; show (text, JSON); a started VM (the
# tiny guest, sandboxed) is the server's client "vivarium: NAME" and status
# reports the card connected (against docs/schemas/status.schema.json);
# vivarium mute on/off; the server killed: the VM runs on, status says
# unavailable; the server back: the VM reconnects from inside the sandbox;
# the audio=none VM's card is silent and mutes; edit audio=off (no card:
# status null, mute fails with one line) and audio=bad.  About 15 s.
# Exit: 0 pass, 1 fail, 77 skip (no /dev/kvm, no pulseaudio/pactl).

set -u
here=$(cd "$(dirname "$0")" && pwd)
viv=${1:?usage: test_audio_library.sh VIVARIUM}
schema=$here/../../docs/schemas/status.schema.json

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$viv" ] || { echo "FAIL: no vivarium binary at '$viv'"; exit 1; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no usable /dev/kvm"
command -v pulseaudio >/dev/null && command -v pactl >/dev/null ||
	skip "pulseaudio and pactl (pulseaudio-utils) are not installed"
command -v python3 >/dev/null || skip "python3 is not installed"

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-audio.XXXXXX")
export XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" "$work/pa" && chmod 700 "$XDG_RUNTIME_DIR"
export PULSE_SERVER=unix:$work/pa/native PULSE_RUNTIME_PATH=$work/pa HOME=$work/pa
vms=$XDG_DATA_HOME/vivarium/vms
pa_pid=

start_pa() {
	rm -f "$work/pa/native"
	pulseaudio --daemonize=no --exit-idle-time=-1 -n --disallow-exit \
		--use-pid-file=no --log-target=stderr --log-level=error \
		--load="module-null-sink sink_name=vsink rate=48000" \
		--load="module-native-protocol-unix socket=$work/pa/native auth-anonymous=1" \
		2>>"$work/pa.log" &
	pa_pid=$!
	for _ in $(seq 50); do
		pactl info >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
stop_pa() {
	[ -n "$pa_pid" ] && kill "$pa_pid" 2>/dev/null && wait "$pa_pid" 2>/dev/null
	pa_pid=
}
cleanup() {
	local pidf
	for pidf in "$vms"/*/vm.pid; do
		[ -f "$pidf" ] && kill -9 "$(cat "$pidf")" 2>/dev/null
	done
	stop_pa
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# audio_field_of VM FIELD: the status object's audio.FIELD of VM.
audio_field_of() {
	v status "$1" --json
	python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["audio"]; print("null" if a is None else a[sys.argv[2]])' \
		"$work/out" "$2" 2>/dev/null
}
audio_field() { audio_field_of snd "$1"; }
# wait_state STATE: up to 5 s for audio.state to become STATE.
wait_state() {
	for _ in $(seq 50); do
		[ "$(audio_field state)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

"$here/mktinyguest.sh" "$work/tiny.bzImage" || { echo "FAIL: cannot build the tiny guest"; exit 1; }
start_pa || { echo "FAIL: pulseaudio did not start: $(cat "$work/pa.log")"; exit 1; }

v create snd --kernel "$work/tiny.bzImage"
check '[ $rc -eq 0 ] && grep -qx "audio=pa" "$vms/snd/vm.conf"' "create with a server answering writes audio=pa (rc $rc $err)"
PULSE_SERVER=unix:$work/pa/absent v create quiet --kernel "$work/tiny.bzImage"
check '[ $rc -eq 0 ] && grep -qx "audio=none" "$vms/quiet/vm.conf"' "create without a server writes audio=none (rc $rc $err)"
v create mute3 --kernel "$work/tiny.bzImage" --audio off
check '[ $rc -eq 0 ] && ! grep -q "^audio=" "$vms/mute3/vm.conf"' "create --audio off writes no audio key (rc $rc $err)"
v create bad4 --kernel "$work/tiny.bzImage" --audio alsa
check '[ $rc -ne 0 ] && [ ! -d "$vms/bad4" ] && echo "$err" | grep -q "use pa, none or off"' "create --audio alsa refused, nothing made ($err)"
v show snd
check '[ $rc -eq 0 ] && echo "$out" | grep -q "^audio: *pa "' "show says audio pa ($out)"
v show quiet --json
check '[ $rc -eq 0 ] && echo "$out" | grep -q "\"audio\" *: *\"none\""' "show --json says audio none for the other"

v start snd
check '[ $rc -eq 0 ]' "start snd (rc $rc $err)"
check 'wait_state connected' "status: audio connected"
v status snd --json
cp "$work/out" "$work/status.json"
check 'python3 "$here/check_json_schema.py" "$schema" "$work/status.json" >&2' \
	"status --json with audio matches docs/schemas/status.schema.json"
check 'pactl list clients | grep -q "application.name = \"vivarium: snd\""' \
	"the server lists the client 'vivarium: snd'"
v mute snd
check '[ $rc -eq 0 ] && [ "$(audio_field muted)" = True ]' "mute snd (rc $rc $err)"
v mute snd off
check '[ $rc -eq 0 ] && [ "$(audio_field muted)" = False ]' "mute snd off (rc $rc $err)"
v mute snd maybe
check '[ $rc -eq 2 ] && [ "$(echo "$err" | wc -l)" -eq 1 ]' "mute snd maybe: usage, one line ($err)"

stop_pa
check 'wait_state unavailable' "server gone: audio unavailable"
v status snd --json
check 'grep -q "\"state\" *: *\"running\"" "$work/out"' "server gone: the VM runs on"
start_pa
check 'V_TIMEOUT=10 wait_state connected' "server back: the VM reconnects within 5 s (from inside the sandbox)"
check 'grep -q "no PulseAudio server" "$vms/snd/vm.log" && [ "$(grep -c "no PulseAudio server" "$vms/snd/vm.log")" -eq 1 ]' \
	"vm.log has one line for the outage"
check '! grep -q "forbidden system call" "$vms/snd/vm.log"' "no sandbox violation"

v start quiet
check '[ $rc -eq 0 ] && [ "$(audio_field_of quiet backend)" = none ] && [ "$(audio_field_of quiet state)" = silent ]' \
	"audio=none: the card on the silent backend"
v mute quiet
check '[ $rc -eq 0 ]' "mute of the silent card (rc $rc $err)"
v stop quiet --force
v edit quiet audio=off
check '[ $rc -eq 0 ] && ! grep -q "^audio=" "$vms/quiet/vm.conf"' "edit audio=off removes the key (rc $rc $err)"
v start quiet
v mute quiet
check '[ $rc -eq 1 ] && [ "$(echo "$err" | wc -l)" -eq 1 ] && echo "$err" | grep -q "no sound card"' \
	"mute of a VM without a card: one line ($err)"
v status quiet --json
check 'grep -q "\"audio\" *: *null" "$work/out"' "status of a VM without a card: audio null"
v stop quiet --force
v stop snd --force
v edit snd audio=none
check '[ $rc -eq 0 ] && grep -qx "audio=none" "$vms/snd/vm.conf"' "edit audio=none (rc $rc $err)"
v edit snd audio=alsa
check '[ $rc -ne 0 ] && echo "$err" | grep -q "use pa, none or off"' "edit audio=alsa refused ($err)"

echo "# $total checks, $errors failed"
[ "$errors" -eq 0 ] || { echo "FAIL"; exit 1; }
echo "PASS"
