#!/bin/bash
# SPDX-License-Identifier: MIT
#
# rig.sh - run a command inside the nested test rig.
#
# The rig is a Linux "L1" machine emulated by QEMU TCG with AMD SVM and nested
# paging (-cpu EPYC,+svm,+npt).  Its kernel loads kvm_amd, so its /dev/kvm has
# real hardware semantics (VMCB, NPT) even on hosts whose own /dev/kvm cannot
# run Linux guests.  Programs under test (vivarium, or QEMU as the peer) run
# in L1 and boot "L2" guests on that /dev/kvm.  See tests/rig/README.md.
#
# Usage:
#   tests/rig/rig.sh [options] -- COMMAND...
#
# Options:
#   --retries N           (must come first) run the rig again, up to N times,
#                         when L1's kernel wedged (its heartbeat stopped, 122;
#                         or a soft lockup, then 124/123); the command's own
#                         failures are never retried
#   --again-on WHAT       (only right after --retries N; repeatable) run the
#                         rig once more, once in all, when the finished run
#                         ended with status WHAT (a number) or printed WHAT
#                         (a text, on stdout): for failures that are the
#                         rig's doing at times but cannot be told from the
#                         command's own (an L2 guest's "triple fault"; a
#                         timeout with L1 alive).  The reason is said on
#                         stderr; a second such run's result stands.
#   --smp N               L1 vCPUs (default 2; multi-threaded TCG)
#   --mem MiB             L1 memory (default 2048)
#   --timeout SEC         kill the rig after SEC seconds of wall time
#                         (default 300; 0 = no limit, for interactive use)
#   --file HOST[:L1]      copy a data file or directory into L1.  L1 defaults
#                         to HOST's absolute path.
#   --bin HOST[:L1]       copy a program into L1 (default /bin/<name>) plus
#                         every shared library `ldd` lists, at the same paths,
#                         and the dynamic loader.
#   --qemu                copy qemu-system-x86_64 and the firmware it needs for
#                         `-kernel/-initrd` boots (use it as the L2 VMM)
#   --module NAME         also insmod kernel module NAME (with the modules it
#                         depends on, from modules.dep) before COMMAND
#   --append STR          extra L1 kernel command-line words ("loglevel=7"
#                         shows all L1 kernel messages; by default, once the
#                         modules are loaded, only critical ones reach the
#                         console and the rest stay in dmesg)
#   --log FILE            write L1's console to FILE instead of stdout
#   --keep                keep the per-run work directory (printed on stderr)
#   -h, --help
#
# COMMAND runs in L1 under /bin/sh with the serial console (ttyS0) as its
# controlling terminal, after /dev/kvm is ready, in directory /rig.  One
# argument is a shell script ("cd /x && ./y"); several arguments are one
# command whose words are passed exactly as given.
#
# Exit status: COMMAND's exit status, taken from the "RIG-EXIT=<n>" line L1
# prints before powering off; otherwise
#   122  L1 stopped: its /init writes a heartbeat from each CPU to a second serial port
#        every 5 s, and none came for RIG_HEARTBEAT_S seconds (L1's CPUs
#        stuck in QEMU's emulated SVM; no program in L1 can stop a busybox
#        loop on both CPUs), so QEMU was stopped early; or L1 died (a triple
#        fault, a kernel panic) before printing RIG-EXIT
#   124  the timeout expired (the message says where L1 stopped)
#   123  L1 ended without printing RIG-EXIT otherwise (QEMU died, ...)
#   125  the rig itself failed (bad option, missing kernel, L1 could not load
#        kvm_amd, ...)
#
# Environment:
#   RIG_KVER        L1 kernel version (default: newest /boot/vmlinuz-* that
#                   has /lib/modules/<ver>)
#   RIG_CACHE_DIR   where the cached base initramfs lives (default
#                   ${XDG_CACHE_HOME:-~/.cache}/vivarium/rig)
#   RIG_QEMU        the QEMU that runs L1 (default qemu-system-x86_64)
#   RIG_TCG_THREAD  multi (default: a host thread per L1 vCPU) or single
#                   (one thread for all: slower, but without the
#                   multi-threaded TCG's assertion that OVMF in L2 hits)
#   RIG_HEARTBEAT_S seconds without a heartbeat from L1 before it counts as
#                   wedged (default 60; 0 = no watch).  Only with --timeout.
#
# The L1 initramfs is two concatenated cpio archives: a cached, gzipped base
# (busybox, /init, the kvm modules) and a per-run uncompressed part (/rig/cmd,
# --bin, --file, --module payloads).

set -euo pipefail

# --retries N (first option only): run the whole rig again, at most N more
# times, when L1 itself wedged: its heartbeat stopped (122), or its kernel
# reported a soft lockup (QEMU's emulated SVM occasionally leaves an L1 CPU
# stuck inside KVM_RUN) and the run then timed out or died.  Each new run
# starts with a line RIG-ATTEMPT=<n> on stdout.  A command that merely fails or hangs is the
# program under test's doing and is never retried.
if [ "${1:-}" = --retries ]; then
	retries=${2:?--retries needs a count}
	shift 2
	again_on=()
	while [ "${1:-}" = --again-on ]; do
		again_on+=("${2:?--again-on needs a status or a text}")
		shift 2
	done
	again_used=0
	attempt=0
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	while :; do
		status=0
		"$0" "$@" | tee "$log" || status=${PIPESTATUS[0]}
		# RIG_RETRY_ON_TIMEOUT=1: the caller's command bounds itself
		# (e.g. `timeout 60` per test), so a rig timeout means L1 itself
		# stopped (seen without a soft-lockup report too).
		if [ "$status" != 122 ] &&
		   { { [ "$status" != 124 ] && [ "$status" != 123 ]; } ||
		     { ! grep -q "soft lockup" "$log" &&
		       ! { [ "$status" = 124 ] && [ "${RIG_RETRY_ON_TIMEOUT:-0}" = 1 ]; }; }; }; then
			why=
			if [ "$again_used" = 0 ]; then
				for w in "${again_on[@]}"; do
					if [[ $w =~ ^[0-9]+$ ]]; then
						[ "$status" = "$w" ] && why="it ended with status $w" && break
					elif grep -aqF -- "$w" "$log"; then
						why="it printed '$w'" && break
					fi
				done
			fi
			[ -n "$why" ] || exit "$status"
			again_used=1
			echo "rig: the run finished (status $status), but $why (--again-on: at times the rig's doing, not the command's): running it once more, the last time" >&2
			printf "\nRIG-ATTEMPT=again\n"
			continue
		fi
		attempt=$((attempt + 1))
		if [ "$attempt" -gt "$retries" ]; then
			echo "rig: L1 wedged $attempt times in a row; giving up" >&2
			exit "$status"
		fi
		echo "rig: L1 wedged or died (no heartbeat, panic, triple fault, soft lockup or timeout: status $status); running the rig again ($attempt of $retries)" >&2
		# On stdout, where callers parse: what follows is a new run
		# (rig_output in lib.sh reads the last one only).
		printf "\nRIG-ATTEMPT=%d\n" $((attempt + 1))
	done
fi

# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

readonly RIG_EXIT_WEDGED=122
readonly RIG_EXIT_TIMEOUT=124
readonly RIG_EXIT_NOMARKER=123
readonly RIG_EXIT_SETUP=125
readonly RIG_BASE_FORMAT=1	# bump when the base archive's layout changes

die() {
	echo "rig: $*" >&2
	exit $RIG_EXIT_SETUP
}

usage() {
	sed -n '/^# Usage:/,/^# Environment:/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

smp=2
mem=2048
timeout_s=300
log=
keep=0
append=
with_qemu=0
files=()
bins=()
modules=()

need_arg() {
	[ $# -ge 2 ] || die "option $1 needs an argument"
}

while [ $# -gt 0 ]; do
	case $1 in
	--smp) need_arg "$@"; smp=$2; shift 2 ;;
	--mem) need_arg "$@"; mem=$2; shift 2 ;;
	--timeout) need_arg "$@"; timeout_s=$2; shift 2 ;;
	--file) need_arg "$@"; files+=("$2"); shift 2 ;;
	--bin) need_arg "$@"; bins+=("$2"); shift 2 ;;
	--module) need_arg "$@"; modules+=("$2"); shift 2 ;;
	--append) need_arg "$@"; append="$append $2"; shift 2 ;;
	--log) need_arg "$@"; log=$2; shift 2 ;;
	--qemu) with_qemu=1; shift ;;
	--keep) keep=1; shift ;;
	-h|--help) usage; exit 0 ;;
	--) shift; break ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
done
[ $# -gt 0 ] || die "no COMMAND given (usage: rig.sh [options] -- COMMAND...)"
case $smp in ''|*[!0-9]*) die "--smp wants a number, got '$smp'" ;; esac
case $mem in ''|*[!0-9]*) die "--mem wants MiB, got '$mem'" ;; esac
case $timeout_s in ''|*[!0-9]*) die "--timeout wants seconds, got '$timeout_s'" ;; esac

qemu=${RIG_QEMU:-qemu-system-x86_64}
command -v "$qemu" >/dev/null || die "$qemu not found (apt-get install qemu-system-x86)"
for tool in cpio gzip ldd; do
	command -v $tool >/dev/null || die "$tool not found"
done

# ---------------------------------------------------------------- L1 kernel

pick_kver() {
	local k
	for k in $(newest_kernels); do
		k=${k#/boot/vmlinuz-}
		if [ -d "/lib/modules/$k/kernel" ]; then echo "$k"; return; fi
	done
}

kver=${RIG_KVER:-$(pick_kver)}
[ -n "$kver" ] || die "no /boot/vmlinuz-* with matching /lib/modules/<ver> (apt-get install linux-image-amd64)"
kernel=/boot/vmlinuz-$kver
moddir=/lib/modules/$kver
[ -r "$kernel" ] || die "$kernel is missing or unreadable"
[ -d "$moddir" ] || die "$moddir is missing"

busybox=$(static_busybox) || die "no statically linked busybox (apt-get install busybox-static)"

# find_module REL: print the path of module REL (without .ko suffix) under
# $moddir, whatever its compression.
find_module() {
	local ext
	for ext in .ko .ko.xz .ko.zst .ko.gz; do
		if [ -e "$moddir/$1$ext" ]; then echo "$moddir/$1$ext"; return 0; fi
	done
	return 1
}

# put_module SRC DESTDIR: decompress SRC (a .ko[.xz|.zst|.gz]) to
# DESTDIR/<same path relative to $moddir, ending in .ko>.
put_module() {
	local rel=${1#"$moddir"/} out
	rel=${rel%.xz}; rel=${rel%.zst}; rel=${rel%.gz}
	out=$2/lib/modules/$kver/$rel
	mkdir -p "${out%/*}"
	case $1 in
	*.ko.xz) xz -dc "$1" >"$out" ;;
	*.ko.zst) zstd -qdc "$1" >"$out" ;;
	*.ko.gz) gzip -dc "$1" >"$out" ;;
	*) cp "$1" "$out" ;;
	esac
	echo "/lib/modules/$kver/$rel"
}

# ---------------------------------------------------------------- base archive

# The kvm stack, in load order (paths under $moddir, without .ko).
kvm_modules=(
	kernel/virt/lib/irqbypass
	kernel/drivers/crypto/ccp/ccp
	kernel/arch/x86/kvm/kvm
	kernel/arch/x86/kvm/kvm-amd
)

# /init of L1.  Stage lines (RIG-STAGE=...) let the host say where L1 stopped.
read -r -d '' init_script <<'EOF' || true
#!/bin/busybox sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
read up idle </proc/uptime
echo "RIG-STAGE=init uptime=$up"
# Heartbeat on the second serial port: the host stops a rig whose L1 has
# stopped running (see RIG_HEARTBEAT_S in rig.sh).  One beat per CPU,
# pinned: QEMU's emulated SVM now and then keeps one L1 CPU inside an L2
# guest that runs with interrupts off, and a single beat that happened to
# sit on that CPU stopped a run whose tests went on on the other.
if [ -c /dev/ttyS1 ]; then
	for c in $(ls -d /sys/devices/system/cpu/cpu[0-9]* | sed 's/.*cpu//'); do
		taskset -c "$c" sh -c 'while :; do read up idle </proc/uptime; echo "cpu$0 $up"; sleep 5; done' "$c" >/dev/ttyS1 2>/dev/null &
	done
fi

fail() {
	echo "RIG-FAIL=$*"
	poweroff -f
}

for m in $(cat /rig-base/modules); do
	insmod "$m" || fail "insmod $m"
done
[ -c /dev/kvm ] || fail "no /dev/kvm after loading kvm-amd"
if [ -f /rig/modules ]; then
	for m in $(cat /rig/modules); do
		insmod "$m" || fail "insmod $m"
	done
fi
# Keep kernel errors (e.g. kvm's "Unhandled WRMSR" for L2 guests) off the
# console that COMMAND's output shares, unless loglevel= was asked for;
# they stay in dmesg.
grep -q 'loglevel=' /proc/cmdline || echo 3 >/proc/sys/kernel/printk
read up idle </proc/uptime
echo "RIG-STAGE=command uptime=$up"

cd /rig 2>/dev/null || cd /
# A subshell, so that setsid does not need to fork: COMMAND gets its own
# session with the console's real tty (cttyhack) as controlling terminal.
(exec setsid cttyhack sh /rig/cmd)
rc=$?
read up idle </proc/uptime
echo
echo "RIG-EXIT=$rc uptime=$up"
sync
poweroff -f
EOF

for m in "${kvm_modules[@]}"; do
	find_module "$m" >/dev/null || die "module $m not found under $moddir"
done
# The base archive depends on the kernel's modules, busybox and the scripts.
base_key=$(
	{
		echo "format $RIG_BASE_FORMAT $kver"
		printf '%s\n' "$init_script"
		declare -f busybox_root
		ls -l --time-style=+%s "$busybox"
		for m in "${kvm_modules[@]}"; do
			ls -lL --time-style=+%s "$(find_module "$m")"
		done
	} | sha256sum | cut -c1-16
)
cache_dir=${RIG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vivarium/rig}
base=$cache_dir/l1-base-$kver-$base_key.cpio.gz
mkdir -p "$cache_dir"

build_base() {
	local stage m
	stage=$(mktemp -d "$cache_dir/base-stage.XXXXXX")
	busybox_root "$stage" "$busybox" || return
	(
		cd "$stage"
		mkdir rig-base
		printf '%s\n' "$init_script" >init
		chmod 755 init
		for m in "${kvm_modules[@]}"; do
			put_module "$(find_module "$m")" .
		done >rig-base/modules
	) || return
	cpio_of "$stage" | gzip -6 >"$base.tmp"
	mv "$base.tmp" "$base"
	rm -rf "$stage"
}

if [ ! -s "$base" ]; then
	echo "rig: building L1 base initramfs for $kver -> $base" >&2
	build_base || die "could not build $base"
fi

# ---------------------------------------------------------------- per-run archive

work=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-rig.XXXXXX")
cleanup() {
	if [ "$keep" = 1 ]; then
		echo "rig: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
stage=$work/stage
mkdir -p "$stage/rig"

# qemu_fw NAME: where this host keeps QEMU's firmware file NAME.
qemu_fw() {
	local dir
	for dir in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
		if [ -e "$dir/$1" ]; then echo "$dir/$1"; return 0; fi
	done
	return 1
}

abspath() {
	case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac
}

# add_path HOST L1: make L1 (an absolute path) a copy of HOST in the stage.
# Files are hard-linked or symlinked, not copied; cpio dereferences them.
add_path() {
	local host=$1 dst=$stage$2
	[ -e "$host" ] || die "$host does not exist"
	case $2 in /*) ;; *) die "L1 path '$2' must be absolute" ;; esac
	mkdir -p "${dst%/*}"
	rm -rf "$dst"
	ln -s "$(abspath "$host")" "$dst"
}

# add_bin HOST L1: the program and the libraries it links.
add_bin() {
	local host=$1 l1=$2 line lib
	[ -x "$host" ] || die "--bin $host: not an executable"
	add_path "$host" "$l1"
	if ! ldd "$host" >"$work/ldd.out" 2>&1; then
		grep -q 'not a dynamic executable\|statically linked' "$work/ldd.out" && return 0
		die "ldd $host failed: $(cat "$work/ldd.out")"
	fi
	if grep -q 'not found' "$work/ldd.out"; then
		die "--bin $host: missing libraries: $(grep 'not found' "$work/ldd.out" | tr -s '\t\n' '  ')"
	fi
	while read -r line; do
		case $line in
		*'=> /'*) lib=${line#*=> }; lib=${lib%% (*} ;;
		/*) lib=${line%% (*} ;;
		*) continue ;;
		esac
		[ -e "$stage$lib" ] || add_path "$lib" "$lib"
	done <"$work/ldd.out"
}

for spec in "${bins[@]+"${bins[@]}"}"; do
	host=${spec%%:*}
	if [ "$host" = "$spec" ]; then l1=/bin/${host##*/}; else l1=${spec#*:}; fi
	add_bin "$host" "$l1"
done
for spec in "${files[@]+"${files[@]}"}"; do
	host=${spec%%:*}
	if [ "$host" = "$spec" ]; then l1=$(abspath "$host"); else l1=${spec#*:}; fi
	add_path "$host" "$l1"
done

if [ "$with_qemu" = 1 ]; then
	qbin=$(command -v qemu-system-x86_64) || die "--qemu: qemu-system-x86_64 not found"
	add_bin "$qbin" /usr/bin/qemu-system-x86_64
	# What a -kernel/-initrd boot of the default PC machine reads (the
	# default VGA and NIC included, and virtio-net-pci's option ROM), in
	# places QEMU searches.
	for fw in bios-256k.bin qboot.rom linuxboot_dma.bin kvmvapic.bin \
		multiboot_dma.bin pvh.bin vgabios-stdvga.bin efi-e1000.rom efi-virtio.rom; do
		if path=$(qemu_fw "$fw"); then add_path "$path" "/usr/share/qemu/$fw"; fi
	done
fi

# --module: resolve dependencies with modules.dep, load order = deps first.
if [ ${#modules[@]} -gt 0 ]; then
	[ -r "$moddir/modules.dep" ] || die "--module: $moddir/modules.dep is missing"
	declare -A seen=()
	for m in "${kvm_modules[@]}"; do seen[$m]=1; done
	add_module() {
		local name=$1 line dep
		line=$(grep -E "(^|/)${name//[-_]/[-_]}\\.ko(\\.[a-z]+)?:" "$moddir/modules.dep" | head -n1)
		[ -n "$line" ] || die "--module $name: not in $moddir/modules.dep"
		local rel=${line%%:*}
		local key=${rel%%.ko*}
		[ -z "${seen[$key]:-}" ] || return 0
		seen[$key]=1
		# modules.dep lists deps nearest-first; load them in reverse order.
		for dep in $(echo "${line#*:}" | tr ' ' '\n' | tac); do
			dep=${dep##*/}
			add_module "${dep%%.ko*}"
		done
		put_module "$moddir/$rel" "$stage" >>"$stage/rig/modules"
	}
	for m in "${modules[@]}"; do add_module "$m"; done
fi

# COMMAND: one argument is a script, several are exact words.
if [ $# -eq 1 ]; then
	printf '%s\n' "$1" >"$stage/rig/cmd"
else
	quoted=
	for w in "$@"; do
		quoted="$quoted '${w//\'/\'\\\'\'}'"
	done
	printf 'exec%s\n' "$quoted" >"$stage/rig/cmd"
fi

cpio_of "$stage" -L >"$work/extra.cpio" ||
	die "could not build the per-run archive"

# The kernel finds an uncompressed cpio after a gzip member only at a 4-byte
# aligned offset: pad the base with zeros (which it skips).
initrd=$work/l1.img
cp "$base" "$initrd"
size=$(stat -c %s "$initrd")
pad=$(( (512 - size % 512) % 512 ))
[ $pad -eq 0 ] || head -c $pad /dev/zero >>"$initrd"
cat "$work/extra.cpio" >>"$initrd"

# ---------------------------------------------------------------- run L1

# TCG cannot offer these EPYC features and warns about each; kvm_amd loads
# without them, so ask for them to be off.
cpu=EPYC,+svm,+npt,-osvw,-topoext,-nrip-save,-xsavec,-rdseed,-sha-ni,-fxsr-opt,-misalignsse,-3dnowprefetch
# QEMU's own log (-D) records why L1's CPUs reset (a triple fault ends L1
# without a word on its console) and what L1 did that QEMU did not like.
qemu_log=$work/qemu.log
heartbeat=$work/heartbeat
: >"$heartbeat"
# shellcheck disable=SC2054 # commas inside QEMU option values
tcg_thread=${RIG_TCG_THREAD:-multi}
case $tcg_thread in multi|single) ;; *) die "RIG_TCG_THREAD wants multi or single, got '$tcg_thread'" ;; esac
qemu_cmd=("$qemu" -accel "tcg,thread=$tcg_thread" -cpu "$cpu" -m "$mem" -smp "$smp"
	-nographic -serial mon:stdio -serial "file:$heartbeat" -pidfile "$work/qemu.pid"
	-no-reboot -nic none -d cpu_reset,guest_errors -D "$qemu_log"
	-kernel "$kernel" -initrd "$initrd"
	-append "console=ttyS0 panic=-1 quiet$append")
# qboot boots -kernel faster than SeaBIOS and prints nothing on the console.
if path=$(qemu_fw qboot.rom); then qemu_cmd+=(-bios "$path"); fi
if [ "$timeout_s" -gt 0 ]; then
	# --foreground keeps QEMU in the terminal's foreground process group, so
	# that an interactive console (make run) can read the keyboard.
	fg=()
	[ -t 0 ] && fg=(--foreground)
	qemu_cmd=(timeout "${fg[@]}" -k 10 "$timeout_s" "${qemu_cmd[@]}")
fi

# watch_heartbeat LIMIT: stop QEMU (and leave $work/wedged) once L1's
# heartbeat, after it started, has not grown for LIMIT seconds.  Before the
# first beat L1's kernel is still booting, which --timeout bounds.
watch_heartbeat() {
	local last=0 size stale=0
	while sleep 5; do
		size=$(stat -c %s "$heartbeat" 2>/dev/null || echo 0)
		if [ "$size" != "$last" ]; then
			last=$size stale=0
			continue
		fi
		[ "$size" -gt 0 ] || continue
		stale=$((stale + 5))
		if [ "$stale" -ge "$1" ]; then
			echo "$stale" >"$work/wedged"
			kill -TERM "$(cat "$work/qemu.pid" 2>/dev/null)" 2>/dev/null
			return
		fi
	done
}
hb_limit=${RIG_HEARTBEAT_S:-60}
case $hb_limit in ''|*[!0-9]*) die "RIG_HEARTBEAT_S wants seconds, got '$hb_limit'" ;; esac
watcher=
if [ "$timeout_s" -gt 0 ] && [ "$hb_limit" -gt 0 ]; then
	watch_heartbeat "$hb_limit" </dev/null >/dev/null 2>&1 &
	watcher=$!
fi

console=${log:-$work/console.log}
start=$(date +%s.%N)
set +e
if [ -n "$log" ]; then
	"${qemu_cmd[@]}" >"$console"
	status=$?
else
	"${qemu_cmd[@]}" | tee "$console"
	status=${PIPESTATUS[0]}
fi
set -e
if [ -n "$watcher" ]; then
	kill "$watcher" 2>/dev/null || true
	wait "$watcher" 2>/dev/null || true
fi
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')

# Console lines end in \r\n, and kernel messages may interleave with output.
marker=$(tr -d '\r' <"$console" | grep -ao 'RIG-EXIT=[0-9]*' | tail -n1 || true)
fail=$(tr -d '\r' <"$console" | grep -a '^RIG-FAIL=' | tail -n1 || true)
last_stage=$(tr -d '\r' <"$console" | grep -ao 'RIG-STAGE=[a-z]* uptime=[0-9.]*' | tail -n1 || true)

where() {
	case $last_stage in
	'') echo "L1 kernel boot (its /init never started)" ;;
	RIG-STAGE=init*) echo "L1 /init, loading the kvm modules (${last_stage#* })" ;;
	RIG-STAGE=command*) echo "COMMAND, started at L1 ${last_stage#* }" ;;
	esac
}

# On a failure, keep the work directory (console, QEMU log, initramfs) and
# show the end of the console.
tail_log() {
	# The images can be rebuilt; the logs say what happened.
	[ "$keep" = 1 ] || rm -rf "$initrd" "$work/extra.cpio" "$stage"
	keep=1
	echo "rig: last lines of the L1 console ($console):" >&2
	tr -d '\r' <"$console" | tail -n 15 | sed 's/^/rig: | /' >&2
	if grep -aq 'Kernel panic' "$console"; then
		echo "rig: L1's kernel panicked: $(tr -d '\r' <"$console" | grep -a -m1 'Kernel panic')" >&2
	elif grep -q 'Triple fault' "$qemu_log" 2>/dev/null; then
		echo "rig: L1 triple-faulted (QEMU log: $qemu_log)" >&2
	else
		echo "rig: QEMU's log of L1 resets and guest errors: $qemu_log" >&2
	fi
}

if [ -n "$fail" ]; then
	echo "rig: L1 setup failed: ${fail#RIG-FAIL=} (after ${elapsed}s)" >&2
	tail_log
	exit $RIG_EXIT_SETUP
fi
if [ -n "$marker" ]; then
	rc=${marker#RIG-EXIT=}
	echo "rig: COMMAND exited $rc; L1 ${last_stage:+reached COMMAND at ${last_stage#* }s, }whole run ${elapsed}s" >&2
	exit "$rc"
fi
if [ -e "$work/wedged" ]; then
	echo "rig: L1 stopped: no heartbeat for $(cat "$work/wedged")s (L1 uptime $(tail -n1 "$heartbeat" | tr -d '\r') at its last beat); stopped in $(where), whole run ${elapsed}s" >&2
	tail_log
	exit $RIG_EXIT_WEDGED
fi
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
	echo "rig: timed out after ${timeout_s}s; stopped in $(where)" >&2
	tail_log
	exit $RIG_EXIT_TIMEOUT
fi
echo "rig: L1 ended without a RIG-EXIT line (qemu exit status $status, after ${elapsed}s); stopped in $(where)" >&2
tail_log
# L1 itself died (a triple fault, or its kernel's panic: seen with a
# corrupted GS base and stack after VMRUN under TCG): as a wedge, not the
# command's doing.
if grep -q 'Triple fault' "$qemu_log" 2>/dev/null || grep -aq 'Kernel panic' "$console"; then
	exit $RIG_EXIT_WEDGED
fi
exit $RIG_EXIT_NOMARKER
