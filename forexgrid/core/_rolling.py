"""Trailing-window statistics shared by the confidence score and the regime rules.

Each value at position t is computed from the values strictly before t (and t itself where
stated), so every function here is causal by construction.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["trailing_rank"]

# Rows per block in trailing_rank: bounds memory at about CHUNK x window comparisons.
_CHUNK = 4096


def trailing_rank(values: np.ndarray, window: int) -> np.ndarray:
    """Percentile rank of each value among the ``window`` values before it, in [0, 1].

    ``rank_t = (#{s in [t-window, t-1]: x_s < x_t} + 0.5 * #{...: x_s == x_t}) / window``:
    value t itself is excluded and ties count half. NaN while fewer than ``window`` earlier
    values exist, and wherever ``x_t`` or any value of its window is NaN.

    Parameters
    ----------
    values
        One-dimensional float array.
    window
        Number of earlier values to rank against (>= 1).

    Returns
    -------
    numpy.ndarray
        Float array of the same length as ``values``.
    """
    x = np.asarray(values, dtype=float)
    n = x.shape[0]
    out = np.full(n, np.nan)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if n <= window:
        return out
    # Row i of the view holds x[i : i + window], the window of target t = i + window.
    windows = sliding_window_view(x[:-1], window)
    targets = x[window:]
    for start in range(0, targets.shape[0], _CHUNK):
        block = windows[start : start + _CHUNK]
        t = targets[start : start + _CHUNK, None]
        less = (block < t).sum(axis=1)
        equal = (block == t).sum(axis=1)
        rank = (less + 0.5 * equal) / window
        bad = np.isnan(t[:, 0]) | np.isnan(block).any(axis=1)
        rank[bad] = np.nan
        out[window + start : window + start + block.shape[0]] = rank
    return out
