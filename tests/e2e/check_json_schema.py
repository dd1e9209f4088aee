#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_json_schema.py SCHEMA [FILE] - validate JSON (FILE or stdin)
against a JSON Schema.  Uses the jsonschema module when it is installed;
otherwise a small validator of the keywords our schemas use (type,
required, properties, additionalProperties: false, items, enum, pattern,
minimum, maximum); CHECK_JSON_SCHEMA_BUILTIN=1 forces the latter.  Exit 0 valid, 1 invalid (each problem on stderr)."""
import json
import os
import re
import sys

TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool,
    "null": type(None),
}


def is_type(v, t):
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, TYPES[t])


def check(v, s, path, errs):
    t = s.get("type")
    if t is not None:
        ts = t if isinstance(t, list) else [t]
        if not any(is_type(v, x) for x in ts):
            errs.append(f"{path}: {v!r} is not of type {t}")
            return
    if "enum" in s and v not in s["enum"]:
        errs.append(f"{path}: {v!r} is not one of {s['enum']}")
    if isinstance(v, str) and "pattern" in s and not re.search(s["pattern"], v):
        errs.append(f"{path}: {v!r} does not match {s['pattern']}")
    if is_type(v, "number"):
        if "minimum" in s and v < s["minimum"]:
            errs.append(f"{path}: {v} < minimum {s['minimum']}")
        if "maximum" in s and v > s["maximum"]:
            errs.append(f"{path}: {v} > maximum {s['maximum']}")
    if isinstance(v, dict):
        for k in s.get("required", []):
            if k not in v:
                errs.append(f"{path}: missing required '{k}'")
        props = s.get("properties", {})
        for k, sub in v.items():
            if k in props:
                check(sub, props[k], f"{path}.{k}", errs)
            elif s.get("additionalProperties") is False:
                errs.append(f"{path}: unexpected member '{k}'")
    if isinstance(v, list) and "items" in s:
        for i, item in enumerate(v):
            check(item, s["items"], f"{path}[{i}]", errs)


def main():
    schema = json.load(open(sys.argv[1]))
    data = json.load(open(sys.argv[2]) if len(sys.argv) > 2 else sys.stdin)
    try:
        if os.environ.get("CHECK_JSON_SCHEMA_BUILTIN"):
            raise ImportError("built-in validator asked for")
        import jsonschema
        errs = [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
                for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]
        how = "jsonschema"
    except ImportError:
        errs = []
        check(data, schema, "$", errs)
        how = "built-in subset validator"
    for e in errs:
        print(e, file=sys.stderr)
    print(f"{len(errs)} schema violations ({how})")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
