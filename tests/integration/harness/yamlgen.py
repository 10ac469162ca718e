"""A tiny YAML writer for test configurations.

Block style for mappings and sequences, every string double-quoted with
JSON escaping (a JSON string is a valid YAML double-quoted scalar), so the
gateway's YAML loader is exercised the way users write files without any
ambiguity (`on`, `yes`, `1.0`, `*`, `~ regex` all stay strings).
"""

import json
import re


def _scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        return json.dumps(v)
    raise TypeError("cannot write %r as YAML" % (v,))


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _key(k):
    # Keys are written plain when they are simple words, as users write them
    # (the SPEC's own `on:` under retries included); anything else is quoted.
    k = str(k)
    return k if _PLAIN_KEY.match(k) else json.dumps(k)


def _emit(v, indent, out):
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return False
        for k, item in v.items():
            key = _key(k)
            if isinstance(item, (dict, list)) and item:
                out.append("%s%s:" % (pad, key))
                _emit(item, indent + 1, out)
            else:
                out.append("%s%s: %s" % (pad, key, _inline(item)))
        return True
    if isinstance(v, list):
        if not v:
            return False
        for item in v:
            if isinstance(item, (dict, list)) and item:
                sub = []
                _emit(item, indent + 1, sub)
                first = sub[0].lstrip()
                out.append("%s- %s" % (pad, first))
                out.extend(sub[1:])
            else:
                out.append("%s- %s" % (pad, _inline(item)))
        return True
    raise TypeError(v)


def _inline(v):
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (_key(k), _inline(x)) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_inline(x) for x in v) + "]"
    return _scalar(v)


def to_yaml(obj):
    """obj: a dict.  Returns YAML text."""
    out = []
    if not isinstance(obj, dict):
        raise TypeError("a configuration is a mapping")
    _emit(obj, 0, out)
    return "\n".join(out) + "\n"
