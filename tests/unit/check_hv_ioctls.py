#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_hv_ioctls.py HOSTDRV_DIR - every KVM ioctl request hostdrv's sources
pass to an ioctl call (hv_ioctl, hv_ioctl_val, ioctl, save_ioctl,
restore_ioctl) is on one of hostdrv/ioctls.c's lists, which the sandbox
allows: one missing there kills a sandboxed VM process on its first use."""
import pathlib
import re
import sys

src = pathlib.Path(sys.argv[1])
lists = set(re.findall(r'\bKVM_[A-Z0-9_]+\b', (src / 'ioctls.c').read_text()))
call = re.compile(r'\b(?:hv_ioctl_val|hv_ioctl|ioctl|save_ioctl|restore_ioctl)\s*\(([^;]*)\)\s*;',
                  re.S)
used = {}
for f in sorted(src.glob('*.c')):
    if f.name in ('ioctls.c', 'doctor.c'):
        continue
    for m in call.finditer(f.read_text()):
        for name in re.findall(r'\bKVM_[A-Z0-9_]+\b', m.group(1)):
            if re.match(r'KVM_(CAP|MEM|IRQFD_FLAG|IOEVENTFD_FLAG|IRQ_ROUTING|MP_STATE|VCPUEVENT|CPUID_FLAG|MAX)_', name):
                continue
            used.setdefault(name, f.name)
missing = sorted(n for n in used if n not in lists)
for n in missing:
    print('not ok - %s (%s) is not on a list in ioctls.c' % (n, used[n]))
print('%d KVM ioctls used, %d on the lists, %d missing' % (len(used), len(lists), len(missing)))
sys.exit(1 if missing or len(used) < 20 else 0)
