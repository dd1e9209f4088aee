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
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

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

with_xvfb pointer-bench "$bench" "${args[@]}"
