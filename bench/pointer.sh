#!/bin/bash
# SPDX-License-Identifier: MIT
#
# pointer.sh - run bench/pointer (an XTEST motion -> SDL window -> the
# virtio tablet's eventq, and a VNC PointerEvent -> the same) on a private
# Xvfb display, which it starts on a free display number and stops
# afterwards.  See bench/README.md for what is measured.
#
#   bench/pointer.sh [--build DIR] [POINTER_ARGS...]
#
# Arguments after the options below go to pointer (--events N,
# --warmup N, --no-sdl, --no-vnc).  Needs no /dev/kvm.
# Exit: pointer's, 1 when Xvfb would not start.

set -u

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}

die() { echo "pointer.sh: $*" >&2; exit 1; }
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift ;;
	-h|--help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) args+=("$1") ;;
	esac
	shift
done

bench=$build/bench/pointer
[ -x "$bench" ] || die "build first: no $bench (ninja -C $build)"
command -v Xvfb >/dev/null || die "Xvfb is missing (apt-get install xvfb)"

# Xvfb picks a free display number itself and writes it to fd 3 once it
# accepts connections (-displayfd): no race with other X servers.
tmp=$(mktemp -d /tmp/pointer-bench.XXXXXX) || die "cannot make a temporary directory"
xvfb_pid=
cleanup() {
	if [ -n "$xvfb_pid" ]; then
		kill "$xvfb_pid" 2>/dev/null
		wait "$xvfb_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp 3>"$tmp/display" \
	2>"$tmp/xvfb.log" &
xvfb_pid=$!
for _ in $(seq 100); do
	[ -s "$tmp/display" ] && break
	kill -0 "$xvfb_pid" 2>/dev/null || break
	sleep 0.1
done
num=$(tr -dc 0-9 <"$tmp/display")
if [ -z "$num" ]; then
	cat "$tmp/xvfb.log" >&2
	die "Xvfb did not start"
fi

DISPLAY=:$num "$bench" "${args[@]}"
