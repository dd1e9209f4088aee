#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mkguest-initramfs.sh - build the L2 test guest's initramfs (busybox-static).
#
# Usage:
#   tests/rig/mkguest-initramfs.sh [--shell | --wait | --drm | --count | --net [--count] | --input | --desk | --audio] [--disk] OUTPUT.cpio.gz
#
# The guest's /init mounts proc, and at once prints
#   GUEST-INIT uptime=<seconds since the guest kernel started>
# then mounts sys and dev and prints
#   GUEST-CPUS=<online processors in /proc/cpuinfo>
#   GUEST-MEM-KB=<MemTotal from /proc/meminfo>
# and powers off (poweroff -f).  Console lines go to /dev/console, so boot the
# guest with console=ttyS0 to read them on the VMM's serial port.
#
# --shell: after the same lines, print a welcome message and run an
# interactive shell on the console; the guest powers off when it exits
# (for `make run`).
#
# --wait: after the same lines, print GUEST-WAITING and wait (for the ACPI
# power button; tests of `vivarium stop`).
#
# --drm: as --wait, but first load bochs-drm (bochs.ko and the DRM modules
# it needs, from modules.dep) so that fbcon takes tty0 over on the
# adapter's framebuffer, print GUEST-FB-DRIVER=<fb0's name>,
# GUEST-FB-MODE=<width>,<height> and GUEST-FB-BPP=<n>, write a banner to
# tty0 (GUEST-FB-TEXT) and then GUEST-WAITING.
#
# --input: as --wait, but first load virtio_input (with virtio_pci and what
# it needs), print for each virtio input device
#   GUEST-INPUT-DEV=<name> node=eventN ev=<capabilities/ev> key=<.../key>
#   rel=<.../rel> abs=<.../abs> prop=<properties>
# (sysfs's hex bitmaps), then one line per event either device reports:
#   GUEST-EV dev=tablet|keyboard type=<n> code=<n> value=<le32, unsigned>
# and GUEST-INPUT-READY (for the tests of the seamless mouse).
#
# --disk (after the mode): virtio_blk and ext4 with their dependencies
# too, loaded at start (GUEST-DISK-MODULES=ok).  With --count, console
# lines "disk-format" (mke2fs /dev/vda, then a file "base" on it: prints
# GUEST-DISK-FORMATTED), "disk-write NAME" (GUEST-DISK-WROTE=NAME) and
# "disk-check NAME" (GUEST-DISK-HAS=NAME:yes|no) work on the first virtio
# disk, each mounting it and unmounting it again, so that what is on the
# disk between two commands is all there is; "disk-busy" starts a process
# that reads the disk's first MiB with O_DIRECT without pause, and from
# then on each GUEST-COUNT line ends in disk=<rounds read> (requests are
# in flight whenever a snapshot is taken, and the rounds go on after a
# restore only if the disk's notifications and interrupts still work; a
# failed read prints GUEST-DISK-ERROR).  And before anything else,
# what the kernel command line asks of /dev/vda (for bench/disk.sh), timed
# with busybox dd and O_DIRECT (each block one request, nothing from the
# guest's cache):
#   vivblk.read=MIB         sequential 1 MiB reads: GUEST-BLK-READ=ok|fail
#                           bytes= ms=
#   vivblk.read4k=N         N sequential 4 KiB reads, one at a time:
#                           GUEST-BLK-READ4K=ok|fail bytes= ms=
#   vivblk.write4k=N        N 4 KiB writes of zeros from the disk's start
#                           (a scratch disk!): GUEST-BLK-WRITE4K=
# Times are the guest's /proc/uptime, in ms.
#
# --count: as --wait, but a process prints GUEST-COUNT=<n> mono=<s> (n
# from 1, one a second; mono: /proc/uptime) for snapshot tests, and every
# line typed on the console comes back as GUEST-ECHO=<line>; the line
# "dmesg-check" also prints GUEST-DMESG-BAD=<n> and the kernel's log lines
# about an unstable clocksource, soft lockups, RCU stalls or hung tasks;
# "tpm" prints GUEST-TPM=version=<major> pcr16=<hex> rng=<the last 32 of
# 128 bytes read from /dev/hwrng, in hex: the kernel keeps up to 64 bytes
# a read left over; these come from the TPM then> (or GUEST-TPM=none
# without /sys/class/tpm/tpm0), and
# "tpm-extend" extends PCR 16 with 32 bytes of 0x5a through /dev/tpm0
# (GUEST-TPM-EXTEND=<the response, hex>).
# "net-fetch URL" (with --net --count: the network is up first) wgets URL
# (GUEST-NET-FETCH=ok bytes=<n>, or =fail: nothing came).
#
# --net: as --wait, but first bring the network up (for the networking
# tests and bench/net.sh).  The archive carries virtio_net and e1000 with the
# modules they need (virtio, virtio_ring, virtio_pci and its modern/legacy
# device modules, failover, net_failover; resolved from modules.dep).  /init
# loads them, brings up lo and every ethN, and then configures eth0:
#   vivnet.ip=ADDR/PREFIX   a static address (TAP tests); otherwise
#                           busybox udhcpc (QEMU user-net / slirp: 10.0.2.15)
# and prints GUEST-NET-DRIVER=<eth0's driver>, GUEST-NET-FEATURES=<a virtio
# NIC's negotiated feature bits, bit 0 first, from sysfs; empty for e1000>,
# GUEST-NET-DHCP=ok|fail|static,
# GUEST-NET-IP=, GUEST-NET-GW=, GUEST-NET-DNS=.  busybox httpd then serves
# /www on port 80 (index.html holds the line VIVNET-GUEST-PAGE-OK;
# GUEST-HTTPD=up), and what the kernel command line asks for runs in this
# order (lists are comma-separated):
#   vivnet.serve=MIB        /www/big: MIB MiB of zeros (GUEST-SERVE=<MiB>)
#   vivnet.ping=ADDR        ping -c 5 (vivnet.pingcount=N): GUEST-PING=ok|fail
#                           addr=ADDR rtt=min/avg/max (ms)
#   vivnet.url=URL,...      wget each: GUEST-FETCH=ok|fail url= bytes= ms=
#                           and GUEST-FETCH-MD5=<md5sum> url=
#   vivnet.sink=URL,...     wget each, counting bytes only (throughput):
#                           GUEST-SINK=ok|fail url= bytes= ms=
# then GUEST-WAITING.  Times are the guest's /proc/uptime, in ms.
# "--net --count": both, the network first.
#
# --desk: as --wait, but first load what a desktop guest's console
# integration and shared folders use (virtio_input, psmouse for the
# vmmouse, virtio-gpu with its DRM modules, virtio_console, 9p over
# virtio, xhci_pci with usbhid for the USB tablet and keyboard and
# usb-storage with sd_mod for passed-through USB disks; from
# modules.dep), start qemu-ga on org.qemu.guest_agent.0 when
# Debian's qemu-guest-agent is installed on the host (copied in with its
# libraries; GUEST-QGA=started|absent) and print
#   GUEST-INPUT name="..." dev=eventN [abs=XMIN..XMAX,YMIN..YMAX]  (each)
#   GUEST-DRM=<connector>:<status>:<modes, comma-separated>          (each)
#   GUEST-VPORT=<virtio-serial port name>                           (each)
# Console lines are then commands (each echoed as GUEST-ECHO=<line>):
#   inputs               the GUEST-INPUT lines again
#   evread N MS NAME     print the events of the input device NAME (the
#                        rest of the line) until
#                        N reports or MS ms: GUEST-EV type= code= value=,
#                        then GUEST-EVREAD=ok|timeout (GUEST-EVREAD-READY
#                        once it listens)
#   drm                  the GUEST-DRM lines again
#   modeset W H          set the WxH mode of the first connected
#                        connector on a filled dumb buffer
#                        (GUEST-MODESET=ok|fail ...), held until the next
#                        modeset
#   clip-get MS          the SPICE agent's guest side: wait for the
#                        host's clipboard and print GUEST-CLIP-TEXT=
#   clip-set TEXT        offer TEXT as the guest's clipboard
#   mount TAG            mount -t 9p TAG on /mnt/TAG (GUEST-MOUNT=ok|fail)
#   sh CMD...            run CMD with sh -c, its output prefixed
#                        GUEST-SH: and GUEST-SH-RC=<status> at the end
#   additions-run        mount the CD-ROM (/dev/sr0) on /cdrom and start
#                        the guest additions' agent from it, uninstalled
#                        (GUEST-ADDITIONS=started|fail); eth0 has
#                        10.0.2.15/24 from the start, for it to report
#   unbind-input NAME    unbind the virtio_input driver from the device
#                        named NAME (GUEST-UNBIND=ok|fail)
#   dmesg-check          as --count's
# (tests/rig/vivguest.c, built static here, does evread, modeset and the
# clipboard.)  With vivshare.bench=MIB on the kernel command line (for
# bench/share.sh), before all that: mount the 9p tag "hostshare" on
# /mnt/bench and time, by /proc/uptime, reading its file "big" in 1 MiB
# blocks (GUEST-SHARE-READ=ok|fail bytes= ms=), writing MIB MiB with an
# fsync (GUEST-SHARE-WRITE=...), creating vivshare.files=N (default
# 10000) empty files (GUEST-SHARE-CREATE=... files= ms=) and stat()ing
# them all (ls -l: GUEST-SHARE-STAT=...); GUEST-SHARE-DONE at the end.
#
# --audio: the sound card's test (tests/e2e/test_audio_in_rig.sh): the
# archive carries snd_hda_intel and snd_hda_codec_generic with what they
# need (soundcore, snd, snd-timer, snd-pcm, snd-hwdep, snd-hda-core,
# snd-hda-codec, snd-intel-dspcfg, ...: from modules.dep, the generic codec
# driver loaded before the controller's so that the codec binds to it),
# Debian's aplay, arecord and amixer (alsa-utils) with libasound and
# /usr/share/alsa's alsa.conf, cards/, pcm/ and ctl/, vivguest (tests/rig/vivguest.c: its tone
# analysis) and /audio/sine.wav: 2 s of a 1 kHz sine at half scale, 48 kHz
# S16_LE stereo (made with sox).  /init loads the modules, waits for
# /dev/snd/pcmC0D0p and prints GUEST-SND-CARD=<first line of
# /proc/asound/cards>, GUEST-SND-CODEC=<codec#0's name>,
# GUEST-SND-PCM=<each PCM of /proc/asound/pcm>, GUEST-SND-CONTROLS=<amixer's
# simple controls>; unmutes every control at 100 % (0 dB on both QEMU's
# codec and ours) and switches capture on (the
# codec's amps come up muted, as real ones do: alsactl init's job on a
# full system), then:
#   GUEST-PLAY-START         just before aplay -D plughw:0,0 /audio/sine.wav
#   GUEST-PLAY=ok|fail ms=   when it returned (guest /proc/uptime)
#   GUEST-REC-START          just before arecord -D plughw:0,0 of
#                            vivsnd.rec=SECONDS (default 3) of 48 kHz S16_LE
#                            stereo, raw, to /tmp/rec.raw
#   GUEST-REC=ok|fail ms=    when it returned
#   GUEST-REC-TONE hz= rms= frames= start_s= end_s= sound_s= gaps=
#                            vivguest tone's analysis of the recording
#   GUEST-SND-DMESG: ...     the kernel's lines about snd/hda
#   GUEST-AUDIO-DONE         and the guest powers off (the VMM exits).
# What aplay and arecord print on stderr (their errors, xruns: "underrun!!!
# (at least N ms long)") follows as GUEST-APLAY: and GUEST-ARECORD: lines.
#
# The ACPI power button: the newest kernel's button.ko and evdev.ko go into
# the archive (Debian builds them as modules).  /init loads them and
# prints GUEST-POWER-BUTTON=/dev/input/eventN; a press then prints
# GUEST-POWER-BUTTON=pressed and powers the guest off (poweroff -f: ACPI
# S5), as acpid or logind would on a full system.
#
# --rootfs ROOT.img (after the mode, instead of --disk): the guest's
# system goes on an ext4 image, ROOT.img, run by busybox init from the
# first virtio disk (/etc/inittab: the mode's /init as /etc/rc.guest,
# started once; /etc/os-release names a "Vivarium test guest"), and
# OUTPUT is only its loader (virtio_blk and ext4, then switch_root; it
# prints GUEST-ROOT=vda|fail).  What the guest installs on that disk
# (the guest additions' inittab line) is there at its next boot.
#
# Needs: busybox-static, cpio, gzip (--rootfs: e2fsprogs).  Runs as any
# user.

set -euo pipefail
# shellcheck source=tests/rig/lib.sh
. "$(dirname "$0")/lib.sh"

die() {
	echo "mkguest-initramfs: $*" >&2
	exit 1
}

shell=0
wait=0
drm=0
count=0
net=0
desk=0
input=0
audio=0
case ${1:-} in
--shell) shell=1; shift ;;
--wait) wait=1; shift ;;
--drm) wait=1; drm=1; shift ;;
--count) wait=1; count=1; shift ;;
--net) wait=1; net=1; shift ;;
--desk) wait=1; desk=1; shift ;;
--input) wait=1; input=1; shift ;;
--audio) audio=1; shift ;;
-h|--help) sed -n '/^# Usage:/,/^# Needs:/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
# --net --count: both (the network first, then the counter and console).
if [ "$net" = 1 ] && [ "${1:-}" = --count ]; then
	count=1
	shift
fi
disk=0
if [ "${1:-}" = --disk ]; then
	disk=1
	shift
fi
rootfs=
if [ "${1:-}" = --rootfs ]; then
	[ $# -ge 2 ] || die "--rootfs needs an image path"
	rootfs=$2
	shift 2
	[ "$disk" = 0 ] || die "--rootfs and --disk: the root disk is the first virtio disk"
fi
[ $# -eq 1 ] || die "usage: mkguest-initramfs.sh [--shell | --wait | --drm | --count | --net [--count] | --input | --desk | --audio] [--disk | --rootfs ROOT.img] OUTPUT.cpio.gz"
out=$1

busybox=$(static_busybox) || die "no statically linked busybox (apt-get install busybox-static)"

stage=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-guest.XXXXXX")
trap 'rm -rf "$stage"' EXIT

busybox_root "$stage" "$busybox"
echo vivarium-guest >"$stage/etc/hostname"

# The power button driver and the event interface, from the kernel the
# guest boots (the newest); uncompressed, as busybox insmod wants them.
kernel=$(newest_kernel)
moddir=/lib/modules/${kernel#/boot/vmlinuz-}/kernel
mkdir -p "$stage/lib/modules"
mods="drivers/acpi/button drivers/input/evdev"
if [ "$drm" = 1 ]; then
	# bochs.ko after its dependencies (modules.dep lists the deepest last).
	dep=/lib/modules/${kernel#/boot/vmlinuz-}/modules.dep
	line=$(grep -E '^kernel/drivers/gpu/drm/tiny/bochs\.ko[^:]*:' "$dep") ||
		die "no bochs.ko in $dep (the guest kernel has no bochs-drm)"
	order=
	for d in $(echo "${line#*:}" | tr ' ' '\n' | tac) "${line%%:*}"; do
		d=${d#kernel/}
		d=${d%%.ko*}
		mods="$mods $d"
		order="$order ${d##*/}"
	done
	echo "$order" >"$stage/lib/modules/drm-order"
fi
# Modules with what they need, each after its dependencies (depth first
# through modules.dep): add_modules ORDERFILE NAME...
dep=/lib/modules/${kernel#/boot/vmlinuz-}/modules.dep
declare -A seen=()
order=
dep_module() {
	local rel=$1 line d
	[ -z "${seen[$rel]:-}" ] || return 0
	seen[$rel]=1
	line=$(grep -E "^${rel//./\\.}:" "$dep") || die "$rel is not in $dep"
	for d in $(echo "${line#*:}" | tr ' ' '\n' | tac); do
		dep_module "$d"
	done
	d=${rel#kernel/}
	d=${d%%.ko*}
	mods="$mods $d"
	order="$order ${d##*/}"
}
add_modules() {
	local file=$1 m line
	shift
	order=
	for m in "$@"; do
		line=$(grep -E "^kernel/([^:]*/)?$m\.ko[^:/]*:" "$dep" | head -n1) ||
			die "no $m.ko in $dep (the guest kernel has no $m module)"
		dep_module "${line%%:*}"
	done
	echo "$order" >"$stage/lib/modules/$file"
}
# (first: the loader loads these, later lists leave them out)
if [ -n "$rootfs" ]; then
	add_modules root-order virtio_pci virtio_blk crc32c_generic ext4
fi
if [ "$desk" = 1 ]; then
	add_modules desk-order virtio_pci virtio_input psmouse virtio_console \
		virtio-gpu 9pnet_virtio 9p virtio_net ata_piix sr_mod isofs \
		xhci-pci usbhid hid-generic usb-storage sd_mod
	cc -static -O2 -o "$stage/bin/vivguest" "$(dirname "$0")/vivguest.c" -lm ||
		die "cannot build tests/rig/vivguest.c statically (apt-get install libc6-dev)"
	# qemu-ga's guest-shutdown runs /sbin/shutdown, which busybox lacks.
	printf '#!/bin/sh\necho "GUEST-SHUTDOWN $*" >/dev/console\nexec poweroff -f\n' >"$stage/sbin/shutdown"
	chmod 755 "$stage/sbin/shutdown"
	if [ -x /usr/sbin/qemu-ga ]; then
		for f in /usr/sbin/qemu-ga $(ldd /usr/sbin/qemu-ga | grep -o '/[^ ]*'); do
			mkdir -p "$stage$(dirname "$f")"
			cp -L "$f" "$stage$f"
		done
	fi
fi
if [ "$audio" = 1 ]; then
	add_modules snd-order snd-hda-codec-generic snd-hda-intel
	cc -static -O2 -o "$stage/bin/vivguest" "$(dirname "$0")/vivguest.c" -lm ||
		die "cannot build tests/rig/vivguest.c statically (apt-get install libc6-dev)"
	for p in aplay arecord amixer; do
		f=$(command -v "$p") || die "no $p (apt-get install alsa-utils)"
		for l in "$f" $(ldd "$f" | grep -o '/[^ ]*'); do
			mkdir -p "$stage$(dirname "$l")"
			cp -L "$l" "$stage$l"
		done
	done
	[ -r /usr/share/alsa/alsa.conf ] || die "no /usr/share/alsa/alsa.conf (apt-get install libasound2-data)"
	mkdir -p "$stage/usr/share/alsa" "$stage/audio"
	# alsa.conf, and what amixer's sysdefault control reads (cards/,
	# pcm/, ctl/); not alsa.conf.d, which may send "default" to PulseAudio.
	cp -r /usr/share/alsa/alsa.conf /usr/share/alsa/cards /usr/share/alsa/pcm \
		/usr/share/alsa/ctl "$stage/usr/share/alsa/"
	command -v sox >/dev/null || die "no sox to make the test tone (apt-get install sox)"
	sox -n -r 48000 -c 2 -b 16 -e signed-integer "$stage/audio/sine.wav" \
		synth 2 sine 1000 vol 0.5 || die "sox could not make the test tone"
fi
# The network's before the disk's: /init loads the network first (with
# --net --disk, virtio_pci and what it needs are in net-order).
if [ "$net" = 1 ]; then
	add_modules net-order virtio_pci virtio_net e1000
fi
if [ "$disk" = 1 ]; then
	# virtio-blk, and ext4 (which mounts the ext2 busybox mke2fs makes).
	add_modules disk-order virtio_pci virtio_blk crc32c_generic ext4
fi
if [ "$input" = 1 ]; then
	add_modules input-order virtio_pci virtio_input
fi
if [ "$net" = 1 ]; then
	# busybox udhcpc configures nothing itself: its script does.
	mkdir -p "$stage/etc/udhcpc"
	cat >"$stage/etc/udhcpc/default.script" <<'EOF'
#!/bin/sh
# busybox udhcpc's hook: $1 is the event; interface, ip, subnet, router,
# dns come in the environment.
case $1 in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
	if [ -n "$router" ]; then
		while ip route del default dev "$interface" 2>/dev/null; do :; done
		for r in $router; do
			ip route add default via "$r" dev "$interface"
			break
		done
	fi
	: >/etc/resolv.conf
	for d in $dns; do
		echo "nameserver $d" >>/etc/resolv.conf
	done
	;;
esac
exit 0
EOF
	chmod 755 "$stage/etc/udhcpc/default.script"
fi
for m in $mods; do
	for ext in .ko .ko.xz .ko.zst .ko.gz; do
		src=$moddir/$m$ext
		[ -e "$src" ] || continue
		dst=$stage/lib/modules/${m##*/}.ko
		case $ext in
		.ko.xz) xz -dc "$src" >"$dst" ;;
		.ko.zst) zstd -qdc "$src" >"$dst" ;;
		.ko.gz) gzip -dc "$src" >"$dst" ;;
		*) cp "$src" "$dst" ;;
		esac
		break
	done
done

cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
read up idle </proc/uptime
echo "GUEST-INIT uptime=$up"
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
echo "GUEST-CPUS=$(grep -c '^processor' /proc/cpuinfo)"
echo "GUEST-MEM-KB=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
echo "GUEST-PCI=$(cd /sys/bus/pci/devices 2>/dev/null && echo *)"
echo "GUEST-TTYS0=$(cat /sys/class/tty/ttyS0/type 2>/dev/null)"
# The ACPI power button (fixed feature, LNXPWRBN): a press powers off.
for m in /lib/modules/evdev.ko /lib/modules/button.ko; do
	[ -e "$m" ] && insmod "$m" 2>/dev/null
done
pwrbtn=
for e in /sys/class/input/event*; do
	[ "$(cat "$e/device/name" 2>/dev/null)" = "Power Button" ] && pwrbtn=/dev/input/${e##*/}
done
echo "GUEST-POWER-BUTTON=${pwrbtn:-none}"
if [ -n "$pwrbtn" ]; then
	# One struct input_event (24 bytes on x86-64) is the press.
	(dd if="$pwrbtn" of=/dev/null bs=24 count=1 2>/dev/null &&
		echo "GUEST-POWER-BUTTON=pressed" && poweroff -f) &
fi
EOF

if [ "$shell" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
hostname -F /etc/hostname
export PS1='\h:\w# '
cpus=$(grep -c '^processor' /proc/cpuinfo)
mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
echo
echo "Welcome to the Vivarium demo guest: Linux $(uname -r), $cpus CPUs, $mem MiB."
echo "This is busybox sh on the serial console; 'poweroff -f' (or exit) ends the guest."
echo
# A subshell, so that setsid does not need to fork: the shell gets its own
# session with the console's real tty as controlling terminal (job control, ^C).
(exec setsid cttyhack sh -l)
EOF
fi

if [ "$drm" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
for m in $(cat /lib/modules/drm-order); do
	insmod /lib/modules/$m.ko || echo "GUEST-INSMOD-FAILED=$m"
done
n=0
while [ ! -e /sys/class/graphics/fb0/virtual_size ] && [ $n -lt 50 ]; do
	sleep 0.2; n=$((n + 1))
done
echo "GUEST-FB-DRIVER=$(cat /sys/class/graphics/fb0/name 2>/dev/null)"
echo "GUEST-FB-MODE=$(cat /sys/class/graphics/fb0/virtual_size 2>/dev/null)"
echo "GUEST-FB-BPP=$(cat /sys/class/graphics/fb0/bits_per_pixel 2>/dev/null)"
printf '\033[2J\033[H' >/dev/tty0
for i in 1 2 3 4 5 6 7 8; do
	echo "VIVARIUM GUEST FRAMEBUFFER CONSOLE LINE $i ########################################" >/dev/tty0
done
echo "GUEST-FB-TEXT"
EOF
fi

if [ "$net" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
for m in $(cat /lib/modules/net-order); do
	insmod /lib/modules/$m.ko || echo "GUEST-INSMOD-FAILED=$m"
done
# vivnet.KEY=VALUE words of the kernel command line.
vivnet() {
	for w in $(cat /proc/cmdline); do
		case $w in "vivnet.$1="*) echo "${w#vivnet.$1=}"; return ;; esac
	done
}
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do
	sleep 0.2; n=$((n + 1))
done
ip link set lo up
ifaces=
for i in /sys/class/net/eth*; do
	[ -e "$i" ] || continue
	ip link set "${i##*/}" up
	ifaces="$ifaces ${i##*/}"
done
echo "GUEST-NET-IFACES=$(echo $ifaces | tr ' ' ,)"
drv=$(readlink /sys/class/net/eth0/device/driver 2>/dev/null)
echo "GUEST-NET-DRIVER=${drv##*/}"
echo "GUEST-NET-FEATURES=$(cat /sys/class/net/eth0/device/features 2>/dev/null)"
addr=$(vivnet ip)
if [ -n "$addr" ]; then
	ip addr add "$addr" dev eth0 && echo "GUEST-NET-DHCP=static"
else
	if udhcpc -i eth0 -s /etc/udhcpc/default.script -q -n -t 10 -T 2 >/tmp/udhcpc.log 2>&1; then
		echo "GUEST-NET-DHCP=ok"
	else
		echo "GUEST-NET-DHCP=fail"
		sed 's/^/GUEST-UDHCPC: /' /tmp/udhcpc.log
	fi
fi
echo "GUEST-NET-IP=$(ip -4 addr show dev eth0 | awk '/inet / { sub(/\/.*/, "", $2); print $2; exit }')"
echo "GUEST-NET-GW=$(ip route | awk '/^default/ { print $3; exit }')"
echo "GUEST-NET-DNS=$(awk '/^nameserver/ { print $2; exit }' /etc/resolv.conf 2>/dev/null)"
mkdir -p /www
echo VIVNET-GUEST-PAGE-OK >/www/index.html
httpd -p 80 -h /www && echo "GUEST-HTTPD=up" || echo "GUEST-HTTPD=fail"
mib=$(vivnet serve)
if [ -n "$mib" ]; then
	dd if=/dev/zero of=/www/big bs=1048576 count="$mib" 2>/dev/null
	echo "GUEST-SERVE=$(($(stat -c %s /www/big) / 1048576))"
fi
pc=$(vivnet pingcount)
for a in $(vivnet ping | tr , ' '); do
	out=$(ping -c "${pc:-5}" "$a" 2>&1)
	rtt=$(echo "$out" | sed -n 's|.*min/avg/max = \([0-9./]*\).*|\1|p')
	[ -n "$rtt" ] && echo "GUEST-PING=ok addr=$a rtt=$rtt" || echo "GUEST-PING=fail addr=$a"
done
for u in $(vivnet url | tr , ' '); do
	rm -f /tmp/f /tmp/rc /tmp/bytes
	mkfifo /tmp/f
	wc -c </tmp/f >/tmp/bytes &
	wc=$!
	t0=$(ms)
	md5=$({ wget -q -O - "$u"; echo $? >/tmp/rc; } | tee /tmp/f | md5sum)
	wait $wc
	t=$(($(ms) - t0))
	[ "$(cat /tmp/rc)" = 0 ] && r=ok || r=fail
	echo "GUEST-FETCH=$r url=$u bytes=$(cat /tmp/bytes) ms=$t"
	echo "GUEST-FETCH-MD5=${md5%% *} url=$u"
done
for u in $(vivnet sink | tr , ' '); do
	t0=$(ms)
	bytes=$({ wget -q -O - "$u"; echo $? >/tmp/rc; } | wc -c)
	t=$(($(ms) - t0))
	[ "$(cat /tmp/rc)" = 0 ] && r=ok || r=fail
	echo "GUEST-SINK=$r url=$u bytes=$bytes ms=$t"
done
EOF
fi

if [ "$desk" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
for m in $(cat /lib/modules/desk-order); do
	# (with --rootfs the loader has loaded virtio_pci already)
	[ -d "/sys/module/$(echo "$m" | tr - _)" ] && continue
	insmod /lib/modules/$m.ko || echo "GUEST-INSMOD-FAILED=$m"
done
n=0
while [ ! -e /dev/dri/card0 ] && [ $n -lt 25 ]; do
	sleep 0.2; n=$((n + 1))
done
sleep 1
drm() { vivguest modes; }
vs() {
	for w in $(cat /proc/cmdline); do
		case $w in "vivshare.$1="*) echo "${w#vivshare.$1=}"; return ;; esac
	done
}
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
mib=$(vs bench)
if [ -n "$mib" ]; then
	files=$(vs files)
	files=${files:-10000}
	mkdir -p /mnt/bench
	if mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 hostshare /mnt/bench; then
		t0=$(ms)
		dd if=/mnt/bench/big of=/dev/null bs=1048576 2>/dev/null && r=ok || r=fail
		echo "GUEST-SHARE-READ=$r bytes=$(stat -c %s /mnt/bench/big) ms=$(($(ms) - t0))"
		t0=$(ms)
		dd if=/dev/zero of=/mnt/bench/written bs=1048576 count="$mib" conv=fsync 2>/dev/null && r=ok || r=fail
		echo "GUEST-SHARE-WRITE=$r bytes=$(stat -c %s /mnt/bench/written) ms=$(($(ms) - t0))"
		mkdir -p /mnt/bench/small
		t0=$(ms)
		i=0 r=ok
		while [ $i -lt "$files" ]; do
			: >"/mnt/bench/small/f$i" || { r=fail; break; }
			i=$((i + 1))
		done
		echo "GUEST-SHARE-CREATE=$r files=$i ms=$(($(ms) - t0))"
		t0=$(ms)
		n=$(ls -l /mnt/bench/small | grep -c '^-')
		echo "GUEST-SHARE-STAT=ok files=$n ms=$(($(ms) - t0))"
	else
		echo "GUEST-SHARE-READ=fail (mount)"
	fi
	echo "GUEST-SHARE-DONE"
fi
# An address for the guest additions to report (no DHCP needed).
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0 2>/dev/null && ip link set eth0 up
vivguest inputs
drm
qga=
for p in /sys/class/virtio-ports/*; do
	[ -e "$p/name" ] || continue
	echo "GUEST-VPORT=$(cat "$p/name")"
	[ "$(cat "$p/name")" = org.qemu.guest_agent.0 ] && qga=/dev/${p##*/}
done
if [ -x /usr/sbin/qemu-ga ] && [ -n "$qga" ]; then
	mkdir -p /var/run
	/usr/sbin/qemu-ga -m virtio-serial -p "$qga" -d -f /var/run/qga.pid &&
		echo "GUEST-QGA=started" || echo "GUEST-QGA=fail"
else
	echo "GUEST-QGA=absent"
fi
(while read -r line; do
	echo "GUEST-ECHO=$line"
	set -- $line
	case ${1:-} in
	inputs) vivguest inputs ;;
	evread)
		n=$2 ms=$3
		shift 3
		vivguest evread "$*" "$n" "$ms" & ;;
	drm) drm ;;
	modeset)
		[ -n "${modeset_pid:-}" ] && kill "$modeset_pid" 2>/dev/null
		vivguest modeset "$2" "$3" &
		modeset_pid=$! ;;
	clip-get) vivguest clip-get "$2" & ;;
	clip-set)
		shift
		vivguest clip-set "$*" 30000 & ;;
	mount)
		mkdir -p "/mnt/$2"
		if mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 "$2" "/mnt/$2"; then
			echo "GUEST-MOUNT=ok $2"
		else
			echo "GUEST-MOUNT=fail $2"
		fi ;;
	sh)
		# The line as typed: "$*" would be word-split and globbed.
		out=$(sh -c "${line#sh }" 2>&1)
		rc=$?
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/GUEST-SH: /'
		echo "GUEST-SH-RC=$rc" ;;
	additions-run)
		mkdir -p /cdrom
		n=0
		while [ ! -e /dev/sr0 ] && [ $n -lt 25 ]; do sleep 0.2; n=$((n + 1)); done
		if mount -t iso9660 -o ro /dev/sr0 /cdrom && [ -x /cdrom/vivarium-additions ]; then
			/cdrom/vivarium-additions >/tmp/additions.log 2>&1 &
			echo "GUEST-ADDITIONS=started"
		else
			echo "GUEST-ADDITIONS=fail ($(ls /cdrom 2>&1 | tr '\n' ' '))"
		fi ;;
	unbind-input)
		shift
		ok=fail
		for e in /sys/class/input/input*; do
			[ "$(cat "$e/name" 2>/dev/null)" = "$*" ] || continue
			dev=$(readlink -f "$e/device")
			echo "${dev##*/}" >/sys/bus/virtio/drivers/virtio_input/unbind && ok=ok
		done
		echo "GUEST-UNBIND=$ok" ;;
	dmesg-check)
		bad=$(dmesg | grep -iE 'clocksource.*unstable|soft lockup|rcu.*stall|hung task')
		echo "GUEST-DMESG-BAD=$(printf '%s' "$bad" | grep -c .)"
		[ -n "$bad" ] && printf '%s\n' "$bad"
		echo "GUEST-DMESG-DONE" ;;
	esac
done </dev/console) &
EOF
fi

if [ "$audio" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
for m in $(cat /lib/modules/snd-order); do
	insmod /lib/modules/$m.ko || echo "GUEST-INSMOD-FAILED=$m"
done
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
vivsnd() {
	for w in $(cat /proc/cmdline); do
		case $w in "vivsnd.$1="*) echo "${w#vivsnd.$1=}"; return ;; esac
	done
}
n=0
while [ ! -e /dev/snd/pcmC0D0p ] && [ $n -lt 50 ]; do
	sleep 0.2; n=$((n + 1))
done
echo "GUEST-SND-CARD=$(sed -n 1p /proc/asound/cards 2>/dev/null | sed 's/^ *//')"
echo "GUEST-SND-CODEC=$(sed -n 's/^Codec: //p' /proc/asound/card0/codec#0 2>/dev/null)"
sed 's/^/GUEST-SND-PCM=/' /proc/asound/pcm 2>/dev/null
amixer -c 0 scontrols 2>&1 >/dev/null | sed 's/^/GUEST-AMIXER-ERR: /'
controls=$(amixer -c 0 scontrols 2>/dev/null | sed -n "s/^Simple mixer control '\(.*\)',\([0-9]*\)$/\1,\2/p")
echo "GUEST-SND-CONTROLS=$(echo "$controls" | tr '\n' ';')"
echo "$controls" | while read -r c; do
	[ -n "$c" ] || continue
	amixer -q -c 0 sset "$c" 100% unmute >/dev/null 2>&1
	amixer -q -c 0 sset "$c" cap >/dev/null 2>&1
done
echo "GUEST-PLAY-START"
# What the guest's ALSA has queued ahead of the card's DMA position
# (frames, and the rate they are at), three times during the playback:
# the guest's part of the write-to-sink latency.
(sleep 0.5
for j in 1 2 3; do
	st=/proc/asound/card0/pcm0p/sub0
	echo "GUEST-PLAY-DELAY=$(sed -n 's/^delay *: *//p' $st/status) rate=$(sed -n 's/^rate: *\([0-9]*\).*/\1/p' $st/hw_params)"
	sleep 0.3
done) &
t0=$(ms)
aplay -D plughw:0,0 /audio/sine.wav 2>/tmp/aplay.err && r=ok || r=fail
echo "GUEST-PLAY=$r ms=$(($(ms) - t0))"
sed 's/^/GUEST-APLAY: /' /tmp/aplay.err
secs=$(vivsnd rec)
echo "GUEST-REC-START"
t0=$(ms)
arecord -D plughw:0,0 -f S16_LE -r 48000 -c 2 -t raw -d "${secs:-3}" /tmp/rec.raw 2>/tmp/arecord.err && r=ok || r=fail
echo "GUEST-REC=$r ms=$(($(ms) - t0))"
sed 's/^/GUEST-ARECORD: /' /tmp/arecord.err
vivguest tone /tmp/rec.raw 48000 2 GUEST-REC-TONE
dmesg | grep -iE 'snd|hda|sound' | sed 's/^/GUEST-SND-DMESG: /'
echo "GUEST-AUDIO-DONE"
EOF
fi

if [ "$disk" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
ok=ok
for m in $(cat /lib/modules/disk-order); do
	insmod /lib/modules/$m.ko 2>/dev/null || { echo "GUEST-INSMOD-FAILED=$m"; ok=fail; }
done
echo "GUEST-DISK-MODULES=$ok"
mkdir -p /mnt
n=0
while [ ! -e /sys/block/vda ] && [ $n -lt 15 ]; do
	sleep 0.2; n=$((n + 1))
done
vivblk() {
	for w in $(cat /proc/cmdline); do
		case $w in "vivblk.$1="*) echo "${w#vivblk.$1=}"; return ;; esac
	done
}
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
# blk_dd NAME COUNT BS dd-arguments...: one timed O_DIRECT run; bytes
# from the whole records written (Debian's busybox dd prints no byte
# count).
blk_dd() {
	name=$1 count=$2 bs=$3
	shift 3
	[ -n "$count" ] || return 0
	t0=$(ms)
	if out=$(dd "$@" bs="$bs" count="$count" 2>&1); then r=ok; else r=fail; fi
	t=$(($(ms) - t0))
	recs=$(echo "$out" | sed -n 's/^\([0-9]*\)+[0-9]* records out.*/\1/p')
	echo "GUEST-BLK-$name=$r bytes=$((${recs:-0} * bs)) ms=$t"
	[ $r = ok ] || echo "$out" | sed "s/^/GUEST-BLK-$name-ERR: /"
}
blk_dd READ "$(vivblk read)" 1048576 if=/dev/vda of=/dev/null iflag=direct
blk_dd READ4K "$(vivblk read4k)" 4096 if=/dev/vda of=/dev/null iflag=direct
blk_dd WRITE4K "$(vivblk write4k)" 4096 if=/dev/zero of=/dev/vda oflag=direct
EOF
fi

if [ "$count" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
(n=0; while :; do n=$((n + 1)); read up idle </proc/uptime
	d=$(cat /tmp/disk-rounds 2>/dev/null)
	echo "GUEST-COUNT=$n mono=$up${d:+ disk=$d}"; sleep 1; done) &
(while read -r line; do
	echo "GUEST-ECHO=$line"
	if [ "$line" = dmesg-check ]; then
		bad=$(dmesg | grep -iE 'clocksource.*unstable|soft lockup|rcu.*stall|hung task')
		echo "GUEST-DMESG-BAD=$(printf '%s' "$bad" | grep -c .)"
		[ -n "$bad" ] && printf '%s\n' "$bad"
		echo "GUEST-DMESG-DONE"
	fi
	set -- $line
	case ${1:-} in
	disk-format)
		if mke2fs -q /dev/vda >/dev/null 2>&1 && mount -t ext2 /dev/vda /mnt; then
			echo base >/mnt/base
			umount /mnt && sync && echo "GUEST-DISK-FORMATTED"
		else
			echo "GUEST-DISK-FORMATTED=fail"
		fi ;;
	disk-write)
		mount -t ext2 /dev/vda /mnt && echo "$2" >"/mnt/$2" && umount /mnt && sync &&
			echo "GUEST-DISK-WROTE=$2" ;;
	disk-busy)
		echo 0 >/tmp/disk-rounds
		(d=0; while dd if=/dev/vda of=/dev/null bs=4096 count=256 iflag=direct 2>/dev/null; do
			d=$((d + 1)); echo $d >/tmp/disk-rounds.new; mv /tmp/disk-rounds.new /tmp/disk-rounds
		done; echo "GUEST-DISK-ERROR after $d rounds") &
		echo "GUEST-DISK-BUSY" ;;
	tpm)
		t=/sys/class/tpm/tpm0
		if [ -e $t ]; then
			echo "GUEST-TPM=version=$(cat $t/tpm_version_major 2>/dev/null) pcr16=$(cat $t/pcr-sha256/16 2>/dev/null) rng=$(dd if=/dev/hwrng bs=128 count=1 2>/dev/null | od -An -v -tx1 | tr -d ' \n' | tail -c 64)"
		else
			echo "GUEST-TPM=none"
		fi ;;
	tpm-extend)
		# TPM2_PCR_Extend (TPM 2.0 Part 3 §22.2) of PCR 16 with the
		# SHA-256 digest 32 x 0x5a, password session, through /dev/tpm0:
		# one write, then the response on the same open file.
		printf '\x80\x02\x00\x00\x00\x41\x00\x00\x01\x82\x00\x00\x00\x10\x00\x00\x00\x09\x40\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x0b' >/tmp/ext.bin
		n=0; while [ $n -lt 32 ]; do printf '\x5a' >>/tmp/ext.bin; n=$((n + 1)); done
		# (In a subshell: a failed exec would end this reader.)
		r=$( (exec 3<>/dev/tpm0 && dd if=/tmp/ext.bin bs=65 count=1 >&3 2>/dev/null &&
			dd bs=4096 count=1 <&3 2>/dev/null | od -An -v -tx1 | tr -d ' \n') 2>/dev/null)
		echo "GUEST-TPM-EXTEND=${r:-fail}" ;;
	net-fetch)
		# (--net --count) wget URL $2 through the guest's network.
		# (busybox 1.35's wget -T crashes: timeout instead.)
		b=$(timeout 20 wget -q -O - "$2" 2>/dev/null | wc -c)
		[ "${b:-0}" -gt 0 ] && echo "GUEST-NET-FETCH=ok bytes=$b" || echo "GUEST-NET-FETCH=fail" ;;
	disk-check)
		if mount -t ext2 /dev/vda /mnt; then
			if [ -e "/mnt/$2" ]; then has=yes; else has=no; fi
			umount /mnt
			echo "GUEST-DISK-HAS=$2:$has"
		else
			echo "GUEST-DISK-HAS=$2:unmountable"
		fi ;;
	esac
done </dev/console) &
EOF
fi

if [ "$input" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
for m in $(cat /lib/modules/input-order); do
	insmod /lib/modules/$m.ko || echo "GUEST-INSMOD-FAILED=$m"
done
# reader NAME NODE: each struct input_event (24 bytes on x86-64: time,
# le16 type, le16 code, le32 value) as a line; the node stays open, so
# nothing is lost between two reads.
reader() {
	exec 3<"$2"
	while :; do
		set -- "$1" $(dd bs=24 count=1 <&3 2>/dev/null | od -A n -v -t u2)
		[ $# -ge 13 ] &&
			echo "GUEST-EV dev=$1 type=${10} code=${11} value=$((${12} + ${13} * 65536))"
	done
}
n=0
while [ $n -lt 50 ]; do
	found=0
	for e in /sys/class/input/event*; do
		case "$(cat "$e/device/name" 2>/dev/null)" in *Virtio*) found=$((found + 1)) ;; esac
	done
	[ $found -ge 2 ] && break
	sleep 0.2; n=$((n + 1))
done
for e in /sys/class/input/event*; do
	name=$(cat "$e/device/name" 2>/dev/null)
	case $name in *Virtio*) ;; *) continue ;; esac
	c=$e/device/capabilities
	echo "GUEST-INPUT-DEV=$name node=${e##*/} ev=$(cat $c/ev) key=$(cat $c/key) rel=$(cat $c/rel) abs=$(cat $c/abs) prop=$(cat $e/device/properties)"
	case $name in
	*Tablet) reader tablet /dev/input/${e##*/} & ;;
	*Keyboard) reader keyboard /dev/input/${e##*/} & ;;
	esac
done
echo "GUEST-INPUT-READY"
EOF
fi

if [ "$wait" = 1 ]; then
	cat >>"$stage/init" <<'EOF'
echo "GUEST-WAITING"
while :; do sleep 3600; done
EOF
fi

cat >>"$stage/init" <<'EOF'
poweroff -f
EOF
chmod 755 "$stage/init"

if [ -n "$rootfs" ]; then
	# The guest's system goes on an ext4 disk image run by busybox init:
	# /init becomes /etc/rc.guest (started once), and whatever a guest
	# installs there (the guest additions add an inittab line) is there
	# at the next boot.  The initramfs is only the loader: virtio_blk and
	# ext4, then switch_root to /dev/vda.
	mv "$stage/init" "$stage/etc/rc.guest"
	cat >"$stage/etc/inittab" <<'EOF'
::sysinit:/bin/mount -o remount,rw /
::once:/etc/rc.guest
::shutdown:/bin/umount -a -r
EOF
	printf 'NAME="Vivarium test guest"\nPRETTY_NAME="Vivarium test guest (busybox)"\nID=vivguest\n' \
		>"$stage/etc/os-release"
	mkdir -p "$stage/mnt" "$stage/srv" "$stage/var/log"
	command -v mke2fs >/dev/null || die "no mke2fs (apt-get install e2fsprogs)"
	rm -f "$rootfs"
	mke2fs -q -F -t ext4 -L vivroot -d "$stage" "$rootfs" 192M ||
		die "mke2fs cannot make $rootfs"
	loader=$(mktemp -d "${TMPDIR:-/tmp}/vivarium-loader.XXXXXX")
	busybox_root "$loader" "$busybox"
	mkdir -p "$loader/lib/modules" "$loader/newroot"
	for m in $(cat "$stage/lib/modules/root-order"); do
		cp "$stage/lib/modules/$m.ko" "$loader/lib/modules/"
	done
	cp "$stage/lib/modules/root-order" "$loader/lib/modules/"
	cat >"$loader/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/root-order); do
	insmod /lib/modules/$m.ko 2>/dev/null || echo "GUEST-INSMOD-FAILED=$m"
done
n=0
while [ ! -e /dev/vda ] && [ $n -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
if mount -t ext4 /dev/vda /newroot; then
	echo "GUEST-ROOT=vda"
	mount --move /dev /newroot/dev
	umount /proc /sys
	exec switch_root /newroot /sbin/init
fi
echo "GUEST-ROOT=fail"
poweroff -f
EOF
	chmod 755 "$loader/init"
	stage_root=$stage
	stage=$loader
	trap 'rm -rf "$stage_root" "$loader"' EXIT
fi

mkdir -p "$(dirname "$out")"
cpio_of "$stage" | gzip -9 >"$out.tmp"
mv "$out.tmp" "$out"
