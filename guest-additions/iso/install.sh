#!/bin/sh
# Vivarium guest additions: install the agent (docs/guest-additions.md).
#
#   sh install.sh              as root, in the running guest
#   sh install.sh --root DIR   into a guest file system mounted at DIR
#                              (enabled for its next boot; nothing started)
#
# Needs root, a shell and coreutils; no compiler, no kernel headers, no
# kernel module of ours (the shares use the kernel's own 9p modules), so a
# guest kernel update changes nothing.  The agent is a static x86-64 Linux
# program; it is installed as /usr/local/sbin/vivarium-additions and
# started at boot by systemd, OpenRC, a SysV init script, busybox's
# inittab, or /etc/rc.local, whichever the guest has (in that order).
set -eu

NAME=vivarium-additions
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=
START=yes

while [ $# -gt 0 ]; do
	case "$1" in
	--root) [ $# -ge 2 ] || { echo "install.sh: --root needs a directory" >&2; exit 2; }
		ROOT=$(cd "$2" && pwd); START=no; shift 2 ;;
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	*) echo "install.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
	esac
done
[ "$ROOT" = / ] && ROOT= && START=yes

if [ -z "$ROOT" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install.sh: run it as root (sudo sh $0)" >&2
		exit 1
	fi
	if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
		echo "install.sh: the agent is for x86-64 Linux; this is $(uname -s) $(uname -m)" >&2
		exit 1
	fi
fi
[ -f "$HERE/$NAME" ] || { echo "install.sh: $HERE/$NAME is missing" >&2; exit 1; }

BIN=/usr/local/sbin/$NAME
mkdir -p "$ROOT/usr/local/sbin"
cp "$HERE/$NAME" "$ROOT$BIN.new"
chmod 0755 "$ROOT$BIN.new"
mv -f "$ROOT$BIN.new" "$ROOT$BIN"
echo "installed $BIN ($("$HERE/$NAME" --version 2>/dev/null || echo "version unknown"))"

# Which init starts services in this guest?
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
	INIT=systemd
elif [ -n "$ROOT" ] && { [ -x "$ROOT/lib/systemd/systemd" ] || [ -x "$ROOT/usr/lib/systemd/systemd" ]; } &&
     { [ -L "$ROOT/sbin/init" ] || [ ! -e "$ROOT/sbin/init" ]; }; then
	INIT=systemd
elif [ -x "$ROOT/sbin/openrc-run" ] || [ -x "$ROOT/usr/sbin/openrc-run" ]; then
	INIT=openrc
elif [ -d "$ROOT/etc/init.d" ] && { [ -x "$ROOT/usr/sbin/update-rc.d" ] || [ -x "$ROOT/sbin/chkconfig" ] || [ -x "$ROOT/usr/sbin/chkconfig" ]; }; then
	INIT=sysv
elif [ -f "$ROOT/etc/inittab" ] && grep -q '^[^#]*::' "$ROOT/etc/inittab"; then
	INIT=inittab
else
	INIT=rclocal
fi

case $INIT in
systemd)
	mkdir -p "$ROOT/etc/systemd/system"
	cat > "$ROOT/etc/systemd/system/$NAME.service" <<UNIT
[Unit]
Description=Vivarium guest additions (shared folders, display size, clock, guest info)
Documentation=file:///usr/local/share/doc/vivarium-additions/README.txt
After=systemd-modules-load.service local-fs.target

[Service]
ExecStart=$BIN
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
UNIT
	if [ -n "$ROOT" ]; then
		mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
		ln -sf "../$NAME.service" "$ROOT/etc/systemd/system/multi-user.target.wants/$NAME.service"
	else
		systemctl daemon-reload
		systemctl enable "$NAME.service"
		systemctl restart "$NAME.service"
	fi
	echo "systemd unit $NAME.service installed and enabled"
	;;
openrc)
	cat > "$ROOT/etc/init.d/$NAME" <<RC
#!/sbin/openrc-run
# Vivarium guest additions
description="Vivarium guest additions"
command=$BIN
command_background=yes
pidfile=/run/$NAME.pid
output_log=/var/log/$NAME.log
error_log=/var/log/$NAME.log
RC
	chmod 0755 "$ROOT/etc/init.d/$NAME"
	if [ -n "$ROOT" ]; then
		mkdir -p "$ROOT/etc/runlevels/default"
		ln -sf "/etc/init.d/$NAME" "$ROOT/etc/runlevels/default/$NAME"
	else
		rc-update add "$NAME" default
		rc-service "$NAME" restart || true
	fi
	echo "OpenRC service $NAME installed and added to the default runlevel"
	;;
sysv)
	cat > "$ROOT/etc/init.d/$NAME" <<SYSV
#!/bin/sh
### BEGIN INIT INFO
# Provides:          $NAME
# Required-Start:    \$local_fs \$remote_fs
# Required-Stop:     \$local_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Vivarium guest additions
### END INIT INFO
PIDFILE=/run/$NAME.pid
case "\$1" in
start)
	[ -f \$PIDFILE ] && kill -0 "\$(cat \$PIDFILE)" 2>/dev/null && exit 0
	$BIN >>/var/log/$NAME.log 2>&1 &
	echo \$! > \$PIDFILE ;;
stop)
	[ -f \$PIDFILE ] && kill "\$(cat \$PIDFILE)" 2>/dev/null; rm -f \$PIDFILE ;;
restart) "\$0" stop; "\$0" start ;;
status) [ -f \$PIDFILE ] && kill -0 "\$(cat \$PIDFILE)" 2>/dev/null ;;
*) echo "usage: \$0 start|stop|restart|status" >&2; exit 2 ;;
esac
SYSV
	chmod 0755 "$ROOT/etc/init.d/$NAME"
	if [ -n "$ROOT" ]; then
		for l in 2 3 4 5; do
			mkdir -p "$ROOT/etc/rc$l.d"
			ln -sf "../init.d/$NAME" "$ROOT/etc/rc$l.d/S90$NAME"
		done
	else
		if command -v update-rc.d >/dev/null 2>&1; then
			update-rc.d "$NAME" defaults
		else
			chkconfig --add "$NAME"
		fi
		"/etc/init.d/$NAME" restart
	fi
	echo "init script /etc/init.d/$NAME installed and enabled"
	;;
inittab)
	if ! grep -q "$BIN" "$ROOT/etc/inittab"; then
		echo "::respawn:$BIN" >> "$ROOT/etc/inittab"
	fi
	[ -z "$ROOT" ] && kill -HUP 1 2>/dev/null || true
	echo "::respawn line added to /etc/inittab (busybox init)"
	;;
rclocal)
	RCL=$ROOT/etc/rc.local
	if [ ! -f "$RCL" ]; then
		printf '#!/bin/sh\n' > "$RCL"
	fi
	if ! grep -q "$BIN" "$RCL"; then
		# Before a final "exit 0", if the file has one.
		if grep -q '^exit 0' "$RCL"; then
			sed -i "s|^exit 0|$BIN >>/var/log/$NAME.log 2>\&1 \&  # $NAME\nexit 0|" "$RCL"
		else
			echo "$BIN >>/var/log/$NAME.log 2>&1 &  # $NAME" >> "$RCL"
		fi
	fi
	chmod 0755 "$RCL"
	if [ -z "$ROOT" ]; then
		"$BIN" >>/var/log/$NAME.log 2>&1 &
	fi
	echo "started from /etc/rc.local at boot"
	;;
esac
mkdir -p "$ROOT/usr/local/share/doc/$NAME"
cp "$HERE/README.txt" "$ROOT/usr/local/share/doc/$NAME/README.txt" 2>/dev/null || true
[ -f "$HERE/uninstall.sh" ] && cp "$HERE/uninstall.sh" "$ROOT/usr/local/sbin/$NAME-uninstall" && chmod 0755 "$ROOT/usr/local/sbin/$NAME-uninstall"
echo "done; uninstall with: sh uninstall.sh (or $NAME-uninstall)"
