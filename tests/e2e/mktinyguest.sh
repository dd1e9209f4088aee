#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mktinyguest.sh OUTPUT [SOURCE.S [-DNAME=VALUE...]] - build the tiny test
# guest (tinyguest/tiny.S, or SOURCE.S with those defines: bench/ioguest) as
# a bzImage that vivarium's direct boot path (--kernel) accepts: boot
# protocol 2.15, 64-bit entry, loaded at 1 MiB, startup_64 at +0x200.
# Needs: gcc (as), objcopy, python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
src=${2:-$here/tinyguest/tiny.S}
shift $(($# < 2 ? $# : 2))
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-tiny.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
gcc -c "$@" -o "$tmp/tiny.o" "$src"
objcopy -O binary -j .text "$tmp/tiny.o" "$tmp/tiny.bin"
python3 - "$tmp/tiny.bin" "$out" <<'PY'
import struct, sys
code = open(sys.argv[1], 'rb').read()
setup = bytearray(2 * 512)			# setup_sects = 1
payload = bytes(0x200) + code			# startup_64 at +0x200
payload += bytes(-len(payload) % 16)
def put(off, fmt, v): struct.pack_into('<' + fmt, setup, off, v)
put(0x1f1, 'B', 1)				# setup_sects
put(0x1f4, 'I', len(payload) // 16)		# syssize
put(0x1fe, 'H', 0xaa55)
put(0x200, 'B', 0xeb); put(0x201, 'B', 0x6a)	# header ends at 0x26c
setup[0x202:0x206] = b'HdrS'
put(0x206, 'H', 0x020f)				# protocol 2.15
put(0x211, 'B', 0x01)				# LOADED_HIGH
put(0x22c, 'I', 0x7fffffff)			# initrd_addr_max
put(0x230, 'I', 0x200000)			# kernel_alignment
put(0x236, 'H', 0x0001)				# XLF_KERNEL_64
put(0x238, 'I', 255)				# cmdline_size
put(0x258, 'Q', 0x100000)			# pref_address
put(0x260, 'I', 0x100000)			# init_size
open(sys.argv[2] + '.tmp', 'wb').write(bytes(setup) + payload)
PY
mv "$out.tmp" "$out"
