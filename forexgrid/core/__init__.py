"""Pure computation (arrays in, arrays out; no files, no database, no widgets).

Phase 1: :mod:`features`, :mod:`splits`, :mod:`models`. Phase 2: :mod:`inference`,
:mod:`signals`, :mod:`regimes`, :mod:`backtest`, :mod:`stats`. Then :mod:`selection`.
"""

from __future__ import annotations

from forexgrid.core import (
    backtest,
    features,
    inference,
    models,
    pbo,
    regimes,
    selection,
    signals,
    splits,
    stats,
    trials,
)

__all__ = [
    "backtest",
    "features",
    "inference",
    "models",
    "pbo",
    "regimes",
    "selection",
    "signals",
    "splits",
    "stats",
    "trials",
]
