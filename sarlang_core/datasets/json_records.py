"""Reading an annotation JSON file whose records may be nested too deeply for Python's parser.

``json.loads`` raises RecursionError for the whole file when one value is nested a few thousand
levels deep. :func:`loads_records` then reads the file record by record instead: the top level,
and the lists directly under a top-level object (COCO's "images", "annotations", "categories"),
are walked here, each element decoded on its own; an element that is too deep becomes a
:class:`TooDeep` marker (with its index), so the importer reports that one record and keeps the rest.
"""

from __future__ import annotations

import json
from typing import Any, Tuple

_WS = " \t\n\r"


class TooDeep:
    """Stands for a record that could not be read because it is nested too deeply."""

    def __repr__(self) -> str:
        return "<record nested too deeply>"


def loads_records(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        pass
    dec = json.JSONDecoder()
    pos = _ws(text, 0)
    value: Any
    if text.startswith("[", pos):
        value, pos = _array(text, pos, dec)
    elif text.startswith("{", pos):
        value, pos = _object(text, pos, dec)
    else:
        value, pos = _value(text, pos, dec)
    if _ws(text, pos) != len(text):
        raise json.JSONDecodeError("Extra data", text, pos)
    return value


def _ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def _value(text: str, pos: int, dec: json.JSONDecoder) -> Tuple[Any, int]:
    try:
        return dec.raw_decode(text, pos)
    except RecursionError:
        return TooDeep(), _skip(text, pos)


def _array(text: str, pos: int, dec: json.JSONDecoder) -> Tuple[list, int]:
    out: list = []
    pos = _ws(text, pos + 1)
    if text.startswith("]", pos):
        return out, pos + 1
    while True:
        value, pos = _value(text, _ws(text, pos), dec)
        out.append(value)
        pos = _ws(text, pos)
        if text.startswith(",", pos):
            pos += 1
        elif text.startswith("]", pos):
            return out, pos + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)


def _object(text: str, pos: int, dec: json.JSONDecoder) -> Tuple[dict, int]:
    out: dict = {}
    pos = _ws(text, pos + 1)
    if text.startswith("}", pos):
        return out, pos + 1
    while True:
        key, pos = dec.raw_decode(text, _ws(text, pos))
        if not isinstance(key, str):
            raise json.JSONDecodeError("Expecting property name", text, pos)
        pos = _ws(text, pos)
        if not text.startswith(":", pos):
            raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
        pos = _ws(text, pos + 1)
        out[key], pos = _array(text, pos, dec) if text.startswith("[", pos) else _value(text, pos, dec)
        pos = _ws(text, pos)
        if text.startswith(",", pos):
            pos += 1
        elif text.startswith("}", pos):
            return out, pos + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)


def _skip(text: str, pos: int) -> int:
    """The end of the (too deep) array or object starting at ``pos``; strings are stepped over."""
    depth, i, in_str = 0, pos, False
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise json.JSONDecodeError("Unterminated value", text, pos)
