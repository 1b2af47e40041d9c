""" "Did you mean ...?" suggestions: one rule for every message that offers one.

A suggestion is made only for a close match (difflib's similarity ratio of at least
:data:`CUTOFF`); a far-off name gets none, and the message lists what is accepted instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["CUTOFF", "close_match"]

#: The least difflib similarity ratio (2 x matching characters / total characters) for a
#: suggestion: "xgbost" -> "xgboost" (0.92) and "ridg" -> "ridge" (0.89) are suggested,
#: "banana" -> anything is not.
CUTOFF = 0.6
# Longer inputs are cut first: difflib is quadratic, and no real name is that long.
_MAX_INPUT = 100


def close_match(value: object, choices: Iterable[str]) -> str | None:
    """The choice closest to ``value`` if it is close enough (:data:`CUTOFF`), else None."""
    matches = difflib.get_close_matches(str(value)[:_MAX_INPUT], list(choices), n=1, cutoff=CUTOFF)
    return matches[0] if matches else None
