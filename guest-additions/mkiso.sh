#!/bin/sh
# guest-additions/mkiso.sh OUT.iso AGENT FILE... - the guest additions CD:
# the static agent and the files given, at the root of an ISO 9660 image
# with Rock Ridge (modes: install.sh runs as `sh install.sh` anyway) and
# Joliet, volume id VIVARIUM_ADD.
set -eu
out=$1; shift
tmp=$(mktemp -d "${out}.d.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for f in "$@"; do
	cp "$f" "$tmp/"
done
chmod 0755 "$tmp"/*.sh "$tmp/vivarium-additions"
rm -f "$out.new"
xorriso -abort_on FAILURE -report_about WARNING -as mkisofs -quiet -R -J \
	-V VIVARIUM_ADD -o "$out.new" "$tmp"
mv -f "$out.new" "$out"
