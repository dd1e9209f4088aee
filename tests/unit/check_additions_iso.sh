#!/bin/bash
# tests/unit/check_additions_iso.sh ISO - the guest additions CD as make
# builds it: its files (xorriso -indev ISO -ls), the agent on it static
# (no program interpreter, no shared libraries) and runnable, and its
# install.sh/uninstall.sh run into fake guest roots (--root) for each kind
# of init: what they install, enable and remove.
set -u
iso=$1
fail=0
ok()  { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }

command -v xorriso >/dev/null || { echo "SKIP: no xorriso"; exit 77; }
[ -f "$iso" ] || { echo "FAIL: $iso was not built"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

list=$(xorriso -indev "$iso" -ls / 2>/dev/null)
for f in vivarium-additions install.sh uninstall.sh README.txt; do
	echo "$list" | grep -qx "'$f'" && ok "on the CD: $f" || bad "on the CD: $f (listing: $list)"
done
xorriso -osirrox on -indev "$iso" -extract / "$tmp/cd" >/dev/null 2>&1 || bad "extract"
chmod -R u+w "$tmp/cd"
agent=$tmp/cd/vivarium-additions
if readelf -lW "$agent" | grep -q INTERP || readelf -dW "$agent" 2>/dev/null | grep -q NEEDED; then
	bad "the agent is not static"
else
	ok "the agent is static (no interpreter, no NEEDED)"
fi
readelf -hW "$agent" | grep -q 'X86-64' && ok "the agent is x86-64" || bad "the agent is not x86-64"
"$agent" --version | grep -q '^vivarium-additions ' && ok "the agent runs" || bad "the agent does not run"
[ -x "$tmp/cd/install.sh" ] && ok "install.sh is executable on the CD" || bad "install.sh mode"

# A fake guest root per init kind: the marker files install.sh looks for.
mkroot() {
	r=$tmp/root-$1
	mkdir -p "$r/etc" "$r/sbin" "$r/usr/sbin" "$r/lib/systemd"
	case $1 in
	systemd) printf '#!/bin/sh\n' > "$r/lib/systemd/systemd"; chmod +x "$r/lib/systemd/systemd"
		 ln -s ../lib/systemd/systemd "$r/sbin/init" ;;
	openrc)  printf '#!/bin/sh\n' > "$r/sbin/openrc-run"; chmod +x "$r/sbin/openrc-run"; mkdir -p "$r/etc/init.d" ;;
	sysv)    mkdir -p "$r/etc/init.d"; printf '#!/bin/sh\n' > "$r/usr/sbin/update-rc.d"; chmod +x "$r/usr/sbin/update-rc.d" ;;
	inittab) printf '::sysinit:/etc/init.d/rcS\n::respawn:/sbin/getty 38400 tty1\n' > "$r/etc/inittab" ;;
	rclocal) printf '#!/bin/sh -e\nexit 0\n' > "$r/etc/rc.local" ;;
	esac
	echo "$r"
}

for kind in systemd openrc sysv inittab rclocal; do
	r=$(mkroot $kind)
	before=$(cd "$r" && find . | sort)
	if ! out=$(sh "$tmp/cd/install.sh" --root "$r" 2>&1); then
		bad "install.sh --root ($kind): $out"
		continue
	fi
	[ -x "$r/usr/local/sbin/vivarium-additions" ] && cmp -s "$agent" "$r/usr/local/sbin/vivarium-additions" &&
		ok "$kind: agent installed" || bad "$kind: agent not installed"
	case $kind in
	systemd) [ -f "$r/etc/systemd/system/vivarium-additions.service" ] &&
		 [ -L "$r/etc/systemd/system/multi-user.target.wants/vivarium-additions.service" ] &&
		 grep -q '^ExecStart=/usr/local/sbin/vivarium-additions$' "$r/etc/systemd/system/vivarium-additions.service" ;;
	openrc)  [ -x "$r/etc/init.d/vivarium-additions" ] && [ -L "$r/etc/runlevels/default/vivarium-additions" ] ;;
	sysv)    [ -x "$r/etc/init.d/vivarium-additions" ] && [ -L "$r/etc/rc2.d/S90vivarium-additions" ] &&
		 sh -n "$r/etc/init.d/vivarium-additions" ;;
	inittab) grep -qx '::respawn:/usr/local/sbin/vivarium-additions' "$r/etc/inittab" ;;
	rclocal) grep -q '^/usr/local/sbin/vivarium-additions .*&' "$r/etc/rc.local" &&
		 [ "$(tail -n1 "$r/etc/rc.local")" = "exit 0" ] ;;
	esac && ok "$kind: started at boot" || bad "$kind: not set up to start at boot ($out)"
	# Twice: no second line/unit.
	sh "$tmp/cd/install.sh" --root "$r" >/dev/null 2>&1
	case $kind in
	inittab) [ "$(grep -c vivarium-additions "$r/etc/inittab")" = 1 ] && ok "$kind: idempotent" || bad "$kind: twice" ;;
	rclocal) [ "$(grep -c vivarium-additions "$r/etc/rc.local")" = 1 ] && ok "$kind: idempotent" || bad "$kind: twice" ;;
	esac
	if ! out=$(sh "$tmp/cd/uninstall.sh" --root "$r" 2>&1); then
		bad "uninstall.sh --root ($kind): $out"
		continue
	fi
	after=$(cd "$r" && find . | sort | grep -v -e '^./usr/local$' -e '^./usr/local/sbin$' \
		-e '^./usr/local/share$' -e '^./usr/local/share/doc$' -e '^./etc/systemd' -e '^./etc/runlevels' \
		-e '^./etc/rc[0-9].d$')
	if [ "$before" = "$after" ] && ! grep -rqs vivarium "$r/etc"; then
		ok "$kind: uninstall.sh removes it all"
	else
		bad "$kind: uninstall.sh left: $(diff <(echo "$before") <(echo "$after") 2>/dev/null || echo "$after")"
	fi
done
# Not root, no --root: refused with one line.
if [ "$(id -u)" != 0 ]; then
	sh "$tmp/cd/install.sh" >/dev/null 2>&1 && bad "install.sh ran without root" || ok "install.sh refuses non-root"
fi
exit $fail
