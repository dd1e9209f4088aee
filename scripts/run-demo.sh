#!/bin/bash
# `make run`: boot the demo VM — the Debian kernel from linux-image-amd64 and
# a busybox initramfs with a welcome message and a shell — on its serial
# console.  On a host whose KVM has no hardware virtualization (vivarium
# doctor says so), the same vivarium runs the same VM inside the nested rig.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
vivarium="$root/$build/app/vivarium"
# shellcheck source=../tests/rig/lib.sh
. "$root/tests/rig/lib.sh"
kernel=$(newest_kernel || true)
if [ -z "$kernel" ]; then
	echo "vivarium: no /boot/vmlinuz-* (install linux-image-amd64)" >&2
	exit 1
fi
initrd="$root/$build/demo-initramfs.cpio.gz"
if [ ! -s "$initrd" ] || [ "$root/tests/rig/mkguest-initramfs.sh" -nt "$initrd" ]; then
	"$root/tests/rig/mkguest-initramfs.sh" --shell "$initrd"
fi
args=(run --kernel "$kernel" --initrd "$initrd" --cpus 2 --memory 1G
      --append "console=ttyS0 quiet")

if report=$("$vivarium" doctor 2>&1); then
	exec "$vivarium" "${args[@]}"
fi
echo "$report"
echo
echo "This host's KVM cannot run Linux at hardware speed: running the demo VM"
echo "with the same vivarium inside the nested rig (QEMU emulating AMD-V)."
echo "It takes about a minute to reach the shell; type 'poweroff' or Ctrl-A x to leave."
echo
exec "$root/tests/rig/rig.sh" --timeout 0 \
	--bin "$vivarium:/bin/vivarium" \
	--file "$kernel:/rig/vmlinuz" --file "$initrd:/rig/initrd.gz" \
	-- /bin/vivarium run --kernel /rig/vmlinuz --initrd /rig/initrd.gz \
	--cpus 2 --memory 1G --append "console=ttyS0 quiet"
