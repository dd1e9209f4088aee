#!/bin/bash
# SPDX-License-Identifier: MIT
#
# display_latency.sh - run bench/display_latency (guest framebuffer write ->
# SDL window pixels on the X server, and -> a VNC client) on a private Xvfb
# display, which it starts on a free display number and stops afterwards.
# See bench/README.md for what is measured.
#
#   bench/display_latency.sh [--build DIR] [DISPLAY_LATENCY_ARGS...]
#
# Arguments after the options below go to display_latency (--frames N,
# --warmup N, --vnc tcp|unix, --guest wait|spin, --seed N, --no-sdl).
# Exit: display_latency's (77: no /dev/kvm), 1 when Xvfb would not start.

set -u

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

die() { echo "display_latency.sh: $*" >&2; exit 1; }
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift ;;
	-h|--help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) args+=("$1") ;;
	esac
	shift
done

bench=$build/bench/display_latency
[ -x "$bench" ] || die "build first: no $bench (ninja -C $build)"
command -v Xvfb >/dev/null || die "Xvfb is missing (apt-get install xvfb)"

with_xvfb display-latency "$bench" "${args[@]}"
