"""The exceptions forexgrid raises.

Every error a user can cause derives from :class:`ForexgridError`, so fronts (the CLI, the
widgets, batch notebooks) catch one type and show its message. Subclasses also derive from
the builtin a Python user would expect (``ValueError``, ``LookupError``), so generic code that
catches those still works.
"""

from __future__ import annotations

import math
from collections.abc import Sized

__all__ = [
    "ConfigError",
    "DataError",
    "ForexgridError",
    "GridSizeError",
    "LostOwnershipError",
    "PathError",
    "RuleError",
    "StorageError",
    "TransientStorageError",
    "quote_input",
]

QUOTE_LIMIT = 200
"""Characters of user input an error message shows at most (see :func:`quote_input`)."""


class ForexgridError(Exception):
    """Base class of every error forexgrid raises on bad input or bad state."""


class ConfigError(ForexgridError, ValueError):
    """A configuration file or value is invalid (names the file, key path and value)."""


class GridSizeError(ConfigError):
    """A grid has more configurations than ``execution.max_grid_size`` (states the arithmetic)."""


class DataError(ForexgridError, ValueError):
    """Market data is unreadable or breaks the Bars contract (names the file and line)."""


class RuleError(ForexgridError, ValueError):
    """A regime rule cannot be parsed (names the rule, the key and the text)."""


class StorageError(ForexgridError):
    """The data store or database is missing, locked, out of date or inconsistent."""


class TransientStorageError(StorageError):
    """The database aborted a transaction to resolve a conflict with another one (a
    serialisation failure or a deadlock): running the transaction again may succeed."""


class LostOwnershipError(StorageError):
    """A runner no longer owns its queue (it was declared crashed and claimed again, or
    finished by another process): it must stop and write nothing more."""


class PathError(ForexgridError, ValueError):
    """A path names something forexgrid will not write to or read from.

    A device, FIFO, socket or directory where a file is expected, a symbolic link to one of
    those, or an input file larger than the configured limit. The message names the path
    and what it is.
    """


def _digits(value: int) -> int:
    # Counted without str(): converting an int of more than 4300 digits raises ValueError.
    value = abs(value)
    if value < 10:
        return 1
    digits = int(math.log10(value)) + 1
    # log10 of a huge int is a float; correct an off-by-one at exact powers of ten.
    if 10 ** (digits - 1) > value:
        digits -= 1
    elif 10**digits <= value:
        digits += 1
    return digits


def quote_input(value: object, limit: int = QUOTE_LIMIT) -> str:
    """Show user input in an error message: its ``repr``, cut to ``limit`` characters.

    A longer text is cut and followed by ``...`` and the input's size, so a message stays
    one line of bounded length whatever the user gave (a 10 MB rule, a binary file's line):
    ``'xxxx... (10,000,000 characters)'``. Control characters are escaped by ``repr``, so
    the result never spans lines.

    Parameters
    ----------
    value : object
        The input to show.
    limit : int
        Characters of the ``repr`` shown at most (>= 1).

    Returns
    -------
    str
        ``repr(value)``, or its first ``limit`` characters, ``...`` and the size: characters
        of a string, bytes of a bytes object, items of a container, else characters of the
        ``repr``. An integer too large to convert to text is shown as its digit count.

    Raises
    ------
    ValueError
        If ``limit`` is below 1.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        digits = _digits(value)
        if digits > limit or digits > 4000:
            return f"<an integer of {digits} digits>"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - an error message must not fail on a hostile object
        return f"<a {type(value).__name__} object>"
    if len(text) <= limit:
        return text
    if isinstance(value, str):
        size = f"{len(value):,} characters"
    elif isinstance(value, (bytes, bytearray)):
        size = f"{len(value):,} bytes"
    elif isinstance(value, Sized):
        size = f"a {type(value).__name__} of {len(value):,} items"
    else:
        size = f"{len(text):,} characters"
    return f"{text[:limit]}... ({size})"
