"""Write a JSON document whose long arrays arrive as iterators, item by item.

:func:`write_json` writes exactly the text ``json.dumps(document, indent=2, default=...)``
would write if every iterator in ``document`` were a list, but never holds more than one
item of an iterator: a checkpoint of a 100,000-run queue is written as the runs are read
from the database, instead of being built whole and dumped (about 1 GB at that size).

Where iterators are looked for: as values of the document's dicts, following dict values
down (the checkpoint envelope, then the snapshot). An iterator's items are encoded whole;
an iterator inside a list or inside an item is an error, as with ``json.dumps``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["NotSerialisableError", "write_json"]

_INDENT = 2


class NotSerialisableError(ValueError):
    """A value of the document cannot be encoded as JSON (the message says which type)."""


def write_json(
    handle: TextIO, document: Any, *, default: Callable[[Any], Any] | None = None
) -> None:
    """Write ``document`` to ``handle`` as ``json.dumps(document, indent=2)`` would.

    Parameters
    ----------
    handle : text file
        Where to write; nothing is written after the closing bracket (no newline).
    document : JSON value
        Dicts may hold iterators (generators) as values, at any depth of dicts: each is
        written as a JSON array, consuming it one item at a time.
    default : callable or None
        As ``json.dumps``'s ``default``: turns an object JSON lacks into one it has.

    Raises
    ------
    NotSerialisableError
        A value (or a key) cannot be encoded; what was written before stays in ``handle``
        (write to a temporary file). Errors raised by an iterator itself pass unchanged.
    """
    encoder = json.JSONEncoder(indent=_INDENT, default=default)
    _write(handle, document, 0, encoder)


def _encode(encoder: json.JSONEncoder, value: Any, level: int) -> str:
    try:
        text = encoder.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise NotSerialisableError(str(exc)) from exc
    # A JSON string never holds a raw line break (it is escaped as \n), so every "\n" of
    # the text starts a line, which must be indented by the value's depth.
    return text.replace("\n", "\n" + " " * (_INDENT * level)) if level else text


def _key(key: Any) -> str:
    # json's own conversion of a key (str as is; int, float, bool, None as their JSON text;
    # anything else refused), taken from a one-entry object.
    try:
        return json.dumps({key: 0})[1:-4]
    except (TypeError, ValueError) as exc:
        raise NotSerialisableError(str(exc)) from exc


def _streams(value: Any) -> bool:
    """Whether ``value`` holds an iterator where :func:`write_json` streams it."""
    if isinstance(value, Iterator):
        return True
    return isinstance(value, dict) and any(_streams(v) for v in value.values())


def _write(handle: TextIO, value: Any, level: int, encoder: json.JSONEncoder) -> None:
    if not _streams(value):
        handle.write(_encode(encoder, value, level))
        return
    inner = "\n" + " " * (_INDENT * (level + 1))
    if isinstance(value, Iterator):
        opened = False
        for item in value:
            handle.write(("," if opened else "[") + inner)
            handle.write(_encode(encoder, item, level + 1))
            opened = True
        handle.write("\n" + " " * (_INDENT * level) + "]" if opened else "[]")
        return
    # A dict with an iterator somewhere below (an empty dict never streams).
    for n, (key, item) in enumerate(value.items()):
        handle.write(("{" if n == 0 else ",") + inner + _key(key) + ": ")
        _write(handle, item, level + 1, encoder)
    handle.write("\n" + " " * (_INDENT * level) + "}")
