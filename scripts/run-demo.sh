#!/bin/bash
# `make run`: boot the demo VM — the Debian kernel from linux-image-amd64 and
# a busybox initramfs with a welcome message and a shell — on its serial
# console.  The VM is "demo" in the VM library: created if missing (its
# kernel and initrd paths brought up to date otherwise), started in its own
# process, and this terminal attached to its serial console.  On a host
# whose KVM has no hardware virtualization (vivarium doctor says so), the
# same vivarium does the same inside the nested rig.
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
append="console=ttyS0 quiet"

# demo_script VIVARIUM KERNEL INITRD: the shell commands that create (or
# update) the demo VM, start it unless it runs, and attach the console.
# The same text runs here and, with L1's paths, inside the rig.
demo_script() {
	cat <<EOS
v=$1
if \$v show demo >/dev/null 2>&1; then
	\$v edit demo kernel=$2 initrd=$3 || exit 1
else
	\$v create demo --kernel $2 --initrd $3 --cpus 2 --memory 1G --append '$append' >/dev/null || exit 1
fi
if ! \$v status demo | grep -qE 'running|paused'; then
	\$v start demo >/dev/null || exit 1
fi
\$v console demo
EOS
}

if report=$("$vivarium" doctor 2>&1); then
	echo "The demo VM 'demo' ('vivarium stop demo' shuts it down; Ctrl-A x detaches, the VM keeps running)."
	exec bash -c "$(demo_script "'$vivarium'" "'$kernel'" "'$initrd'")"
fi
echo "$report"
echo
echo "This host's KVM cannot run Linux at hardware speed: running the demo VM"
echo "with the same vivarium inside the nested rig (QEMU emulating AMD-V)."
echo "It takes about a minute to reach the shell; type 'poweroff' or Ctrl-A x to leave."
echo
# In L1: the library under /root/.local/share, the socket under
# /tmp/vivarium-0; when the console ends, the VM is stopped with L1.
exec "$root/tests/rig/rig.sh" --timeout 0 \
	--bin "$vivarium:/bin/vivarium" \
	--file "$kernel:/rig/vmlinuz" --file "$initrd:/rig/initrd.gz" \
	-- "$(demo_script /bin/vivarium /rig/vmlinuz /rig/initrd.gz); /bin/vivarium stop demo --force 2>/dev/null; true"
