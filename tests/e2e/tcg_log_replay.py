#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tcg_log_replay.py - replay a TPM 2.0 firmware event log.

Reads the log as hex on stdin (what a guest's
/sys/kernel/security/tpm0/binary_bios_measurements holds: the crypto-agile
format of the TCG PC Client Platform Firmware Profile, section 10: a
TCG_PCR_EVENT carrying the "Spec ID Event03" header, then TCG_PCR_EVENT2
records) and prints, for the SHA-256 bank:

    EVENTS=<records extended>
    EVENT pcr=<n> type=0x<type> sha256=<hex>   one per record extended
    PCR<n>=<hex>                       n = 0..7, what the log replays to

A PCR starts at zero and each record's digest is extended into it:
PCR = SHA-256(PCR || digest); EV_NO_ACTION records are not extended.
Exit: 0, or 1 with a line on stderr when the log does not parse.
"""
import hashlib
import struct
import sys

EV_NO_ACTION = 0x3
TPM_ALG_SHA256 = 0x000B


def fail(why):
    print(f"tcg_log_replay: {why}", file=sys.stderr)
    sys.exit(1)


def main():
    text = "".join(sys.stdin.read().split())
    try:
        log = bytes.fromhex(text)
    except ValueError:
        fail("the input is not hex")
    if len(log) < 32:
        fail(f"the log is {len(log)} bytes: no Spec ID event")
    # The first record: TCG_PCR_EVENT (SHA-1 layout) with the Spec ID event.
    pcr, etype = struct.unpack_from("<II", log, 0)
    (size,) = struct.unpack_from("<I", log, 28)
    spec = log[32:32 + size]
    if etype != EV_NO_ACTION or not spec.startswith(b"Spec ID Event03\0"):
        fail("the first record is not the Spec ID Event03 header (not a crypto-agile log)")
    (nalgs,) = struct.unpack_from("<I", spec, 24)
    sizes = {}
    for i in range(nalgs):
        alg, dsize = struct.unpack_from("<HH", spec, 28 + 4 * i)
        sizes[alg] = dsize
    if TPM_ALG_SHA256 not in sizes:
        fail(f"the log has no SHA-256 bank (algorithms {sorted(sizes)})")
    pcrs = [bytes(32)] * 24
    events = []
    off = 32 + size
    while off + 12 <= len(log):
        pcr, etype, count = struct.unpack_from("<III", log, off)
        if count == 0 and pcr == 0 and etype == 0:
            break  # zero fill after the last record
        off += 12
        digest = None
        for _ in range(count):
            (alg,) = struct.unpack_from("<H", log, off)
            if alg not in sizes:
                fail(f"record {len(events) + 1}: digest of unknown algorithm 0x{alg:04x}")
            if alg == TPM_ALG_SHA256:
                digest = log[off + 2:off + 2 + 32]
            off += 2 + sizes[alg]
        if off + 4 > len(log):
            fail("the last record is cut short")
        (esize,) = struct.unpack_from("<I", log, off)
        off += 4 + esize
        if off > len(log) or pcr >= 24:
            fail(f"record {len(events) + 1} runs past the log or names PCR {pcr}")
        if etype == EV_NO_ACTION:
            continue
        if digest is None:
            fail(f"record {len(events) + 1} has no SHA-256 digest")
        pcrs[pcr] = hashlib.sha256(pcrs[pcr] + digest).digest()
        events.append((pcr, etype, digest))
    print(f"EVENTS={len(events)}")
    for pcr, etype, digest in events:
        print(f"EVENT pcr={pcr} type=0x{etype:x} sha256={digest.hex()}")
    for i in range(8):
        print(f"PCR{i}={pcrs[i].hex()}")


if __name__ == "__main__":
    main()
