"""A tiny YAML writer for test configurations.

Block style for mappings and sequences.  Simple strings (durations, sizes,
names, plain paths, host:port) are written plain, as users write them;
every other string is double-quoted with JSON escaping (a JSON string is a
valid YAML double-quoted scalar), so `on`, `yes`, `"2"`, `/a/*` and
`~ regex` stay strings.  Keys are plain when they are simple words.
"""

import json
import re


_PLAIN_STR = re.compile(r"^[A-Za-z0-9_/.][A-Za-z0-9_./:@-]*$")
_NUMBERISH = re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9]*)?([eE][-+]?[0-9]+)?$|^0[xob]|^[0-9][0-9:]*$")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _plain_ok(s):
    """Strings a user would write unquoted (durations, sizes, names, plain
    paths, host:port) are written plain; anything YAML could read as another
    type or that has special characters is quoted."""
    return (bool(_PLAIN_STR.match(s)) and not _NUMBERISH.match(s) and s.lower() not in _RESERVED
            and not s.endswith(":") and "://" not in s)


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
        return v if _plain_ok(v) else json.dumps(v)
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
