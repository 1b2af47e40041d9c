"""Formatting shared by the command modules: fixed-width tables, numbers, times, option
callbacks, CSV and JSON output. Pure: strings in and out, testable without a terminal."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click
import pandas as pd

from forexgrid._suggest import close_match
from forexgrid.exceptions import quote_input

__all__ = [
    "ROW_ID",
    "checked_against",
    "combination",
    "elide",
    "lookback_text",
    "lookbacks_text",
    "missing",
    "num",
    "records_json",
    "render_table",
    "split_values",
    "utc_time",
    "whole",
    "wrap",
]


# The largest id a database row can have (a signed 64-bit integer).
_MAX_ID = 2**63 - 1


class _RowId(click.ParamType):
    """A queue or run id: a whole number the database can hold, else a usage error."""

    name = "id"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            # At most 19 digits: int() of a huge text is slow, and no id is that long.
            number = int(text) if re.fullmatch(r"[0-9]{1,19}", text) else None
        if number is None or not 1 <= number <= _MAX_ID:
            self.fail(
                f"{quote_input(value)} is not an id (a whole number between 1 and {_MAX_ID})",
                param,
                ctx,
            )
        return number


ROW_ID = _RowId()


def render_table(rows: Sequence[Mapping[str, str]], columns: Sequence[str], right=()) -> str:
    """Return ``rows`` as a fixed-width text table: text columns left-, ``right`` right-aligned.

    Parameters
    ----------
    rows
        One mapping per row, column name -> the cell's text.
    columns
        The columns, in order; their names are the header.
    right
        Columns aligned to the right (numbers).

    Returns
    -------
    str
        Header, a dashed rule, then the rows; no trailing newline.
    """
    widths = {c: max([len(c), *(len(r.get(c, "")) for r in rows)]) for c in columns}

    def line(cells: Mapping[str, str]) -> str:
        parts = [
            cells.get(c, "").rjust(widths[c]) if c in right else cells.get(c, "").ljust(widths[c])
            for c in columns
        ]
        return "  ".join(parts).rstrip()

    out = [line({c: c for c in columns}), "  ".join("-" * widths[c] for c in columns)]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def num(value: Any, spec: str = ".2f", suffix: str = "", scale: float = 1.0) -> str:
    if missing(value):
        return "n/a"
    return f"{float(value) * scale:{spec}}{suffix}"


def whole(value: Any) -> str:
    return "n/a" if missing(value) else str(int(value))


def utc_time(value: Any) -> str:
    if missing(value) or value is pd.NaT:
        return ""
    stamp = pd.Timestamp(value)
    # The database hands out UTC; a naive value (another tool's row) is read as UTC too.
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


#: How a lookback window that changes nothing is shown (threshold 0 with a signal that
#: does not use L: the combination is the same at every lookback).
LOOKBACK_NOT_USED = "not used"


def lookback_text(value: Any) -> str:
    """A lookback window as every table and line shows it: ``"48 bars"``, or ``"not used"``.

    Lookback is stored missing where it changes nothing (threshold 0, single methods).
    Prose puts the word before it: ``f"lookback {lookback_text(48)}"`` is "lookback 48 bars".
    """
    if missing(value):
        return LOOKBACK_NOT_USED
    return f"{int(value)} bars"


def lookbacks_text(values: Iterable[Any]) -> str:
    """Several lookback windows: ``"50, 100, 200 bars"`` (empty: ``"none"``)."""
    numbers = [str(int(v)) for v in values if not missing(v)]
    return f"{', '.join(numbers)} bars" if numbers else "none"


def combination(signal: Any, threshold: Any, lookback: Any) -> str:
    """An inference combination: ``"direct_multi / 0.3 / 200 bars"`` (signal / confidence
    threshold / lookback)."""
    if missing(signal):
        return ""
    return f"{signal} / {num(threshold, 'g')} / {lookback_text(lookback)}"


def elide(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in ``...`` when cut."""
    return text if len(text) <= width else text[: max(0, width - 3)] + "..."


def wrap(text: str, width: int) -> str:
    """``text`` wrapped to lines of at most ``width`` characters (words are not split)."""
    import textwrap

    return textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)


def split_values(ctx: click.Context, param: click.Parameter, values: Iterable[str]):
    """Callback: the option's values, repeated and/or comma-separated, as one list."""
    out = []
    for value in values or ():
        pieces = [p.strip() for p in value.split(",")]
        if not any(pieces):
            raise click.BadParameter(f"empty value {quote_input(value)}", ctx=ctx, param=param)
        out.extend(p for p in pieces if p)  # a stray comma ("EURUSD,") is harmless
    return out


def checked_against(known: Sequence[str], normalise=str.lower):
    """A callback that splits the values and refuses any not in ``known``."""

    def check(ctx: click.Context, param: click.Parameter, values: Iterable[str]):
        out = [normalise(v) for v in split_values(ctx, param, values)]
        for value in out:
            if value not in known:
                close = close_match(value, known)
                hint = f"; did you mean {close!r}?" if close else ""
                raise click.BadParameter(
                    f"unknown value {quote_input(value)}{hint} (expected one of "
                    f"{', '.join(known)})",
                    ctx=ctx,
                    param=param,
                )
        return out

    return check


def records_json(frame: pd.DataFrame) -> str:
    """A frame as a JSON list of records: missing values null, dates ISO text."""
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return json.dumps(records, indent=2, default=_json_value, allow_nan=False)


def _json_value(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")
