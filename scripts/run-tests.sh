#!/bin/sh
# Run the meson test suites (all, or the one named) and end with the line
# "N passed, N failed, N skipped".  Skipped tests are not counted as passed.
set -u
build=${1:-build}
suite=${2:-}
if [ -n "$suite" ]; then
	meson test -C "$build" --no-rebuild --print-errorlogs --suite "$suite"
else
	meson test -C "$build" --no-rebuild --print-errorlogs
fi
rc=$?
python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
if not lines:
    failed = 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $rc
