"""Selection: which trained models stay, as a pure function of one run and the current bests.

For each regime, a run's candidate is the combination chosen on the validation period (one
row of ``RunResult.chosen``). The bests are kept per ``(symbol, regime)`` as lists of at most
``keep_top_n`` :class:`BestEntry`, sorted by score, best first; the caller passes the lists
of one validation window (lists of different windows or rule versions are never ranked
against each other). A run is kept while it sits in any list; a run pushed out of every list
loses its model file (the runner deletes it; database rows are never deleted).

The score (``selection.score``):

- ``deflated_sharpe`` (default): the deflated Sharpe ratio (DSR) of the chosen combination's
  daily validation returns against *every* trial of its scope (symbol, regime, rules
  version, validation window) across the grid, so a list compares models by how unlikely
  their validation Sharpe is as the best of everything tried. The list ranks by the DSR's
  z-score (:func:`forexgrid.core.stats.deflated_sharpe_z`): the same order as the DSR, but it
  does not saturate near DSR = 1, so improvement margins keep their meaning. Entries'
  scores are recomputed against the scope's current statistics before each decision
  (:func:`rescore_entries`), so a decision always compares like with like.
- ``val_sharpe``: the chosen combination's validation Sharpe (the user guide's literal rule).

The rule (see ``docs/selection.md`` for a worked example):

- *Eligible*: the regime's ``val_trades >= min_trades``, a finite validation Sharpe and
  score, ``val_sharpe >= min_score`` and ``dsr >= min_dsr``. The pseudo-regime ``all`` has
  its own list like any regime (the best model overall).
- *Enters a list that is not full* when eligible.
- *Enters a full list* when eligible and ``score > weakest + max(min_improvement_threshold *
  |weakest|, absolute_improvement_floor)``; the weakest entry is pushed out. Strictly
  greater: an improvement exactly at the margin is not enough. The absolute floor keeps the
  relative margin meaningful for negative and near-zero scores.
- *Order*: score descending; ties keep the earlier entry ahead (earlier ``achieved_at``,
  then lower run id), so the outcome never depends on the order of the input lists.
- *Same model twice*: applying a run that is already in a list replaces its own entry (so
  re-applying a result after a crash changes nothing); a run with the ``config_hash`` of an
  entry already in the list (the same model retrained) competes against that entry only,
  and replaces it under the full-list rule, so one model never holds two places.
- *Lists longer than keep_top_n* (after lowering the setting) are trimmed when a run is
  evaluated against them; other lists are left as they are.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from statistics import NormalDist
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forexgrid.config import SELECTION_SCORES
from forexgrid.core import stats as _stats
from forexgrid.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    from forexgrid.core.trials import TrialStats

__all__ = [
    "PSEUDO_REGIMES",
    "SCORES",
    "VERDICT_SIGNIFICANT",
    "VERDICT_LUCK",
    "BestEntry",
    "BestsKey",
    "DailyMoments",
    "SelectionDecision",
    "deflated_score",
    "rescore_entries",
    "rule_settings",
    "score_candidates",
    "select",
    "verdict",
]

logger = logging.getLogger(__name__)

_STANDARD_NORMAL = NormalDist()

#: Names that are not market regimes: ``all`` covers every bar (it has its own list).
PSEUDO_REGIMES: frozenset[str] = frozenset({"all"})

#: The values of ``selection.score``.
SCORES: tuple[str, ...] = SELECTION_SCORES

#: The verdicts :func:`verdict` gives, and the DSR at which an entry is significant.
VERDICT_SIGNIFICANT = "significant"
VERDICT_LUCK = "could be luck"
SIGNIFICANT_DSR = 0.95

#: ``(symbol, regime)``, the key of the bests mapping.
BestsKey = tuple[str, str]

RunId = int | str

_CHOSEN_COLUMNS = ("regime", "signal", "threshold", "lookback", "val_sharpe", "val_trades")


@dataclass(frozen=True)
class DailyMoments:
    """Sharpe ratio, skewness, non-excess kurtosis and count of a daily return series: what
    the deflated Sharpe ratio of a chosen combination is recomputed from."""

    sharpe: float
    skew: float
    kurtosis: float
    n: int

    @classmethod
    def of(cls, daily: np.ndarray) -> DailyMoments:
        """The moments of one trial's daily returns (NaN ones when degenerate)."""
        sharpe, skew, kurtosis, n = _stats.sharpe_moments(np.asarray(daily, dtype=float))
        return cls(sharpe, skew, kurtosis, int(n))


def deflated_score(moments: DailyMoments | None, trials: TrialStats) -> tuple[float, float]:
    """The (DSR, z) of a chosen combination against every trial of its scope.

    ``SR* = sqrt(V) * E[max of N standard normals]`` with N the effective number of
    independent trials of the scope and V the null variance of their daily Sharpe ratios
    (:class:`~forexgrid.core.trials.TrialStats`); z is the PSR's statistic against SR* and
    DSR = Phi(z). A single trial has no selection to deflate for (SR* = 0). NaN pair when
    undefined.
    """
    if moments is None:
        return math.nan, math.nan
    sr_star = trials.expected_max_sharpe
    z = _stats.deflated_sharpe_z(
        moments.sharpe, moments.n, moments.skew, moments.kurtosis, sr_star
    )
    return (_STANDARD_NORMAL.cdf(z) if math.isfinite(z) else math.nan), z


def verdict(dsr: float) -> str:
    """``"significant"`` when the grid-wide DSR is at least 0.95, else ``"could be luck"``."""
    return VERDICT_SIGNIFICANT if math.isfinite(dsr) and dsr >= SIGNIFICANT_DSR else VERDICT_LUCK


@dataclass(frozen=True)
class BestEntry:
    """One place in a ``(symbol, regime)`` list of bests.

    Attributes
    ----------
    run_id : int or str
        The training run (database id or run uuid; use one kind consistently).
    config_hash : str
        The run's configuration hash.
    regime, symbol : str
        The list this entry belongs to.
    score : float
        What the list ranks by: the DSR's z-score (``deflated_sharpe``) or the validation
        Sharpe (``val_sharpe``) of the chosen combination in this regime.
    signal, threshold, lookback
        The chosen inference combination (``lookback`` None where it changes nothing).
    test_sharpe : float
        Its Sharpe on the untouched test period (reported, never used to select).
    achieved_at : datetime, optional
        When the entry was made; earlier entries stay ahead on ties.
    dsr : float
        The grid-wide deflated Sharpe ratio at the last update of the list.
    val_sharpe : float
        The chosen combination's validation Sharpe.
    daily : DailyMoments, optional
        The moments of its daily validation returns, to recompute the DSR from.
    validation_window : (date, date), optional
        The validation window it was scored on (None: a legacy entry).
    rules_version : str, optional
        The version of the regime's rules it was scored under.
    """

    run_id: RunId
    config_hash: str
    regime: str
    symbol: str
    score: float
    signal: str
    threshold: float
    lookback: int | None
    test_sharpe: float = math.nan
    achieved_at: datetime | None = None
    dsr: float = math.nan
    val_sharpe: float = math.nan
    daily: DailyMoments | None = None
    validation_window: tuple[date, date] | None = None
    rules_version: str | None = None


def _score_of(kind: str, val_sharpe: float, z: float) -> float:
    return z if kind == "deflated_sharpe" else val_sharpe


def _check_score_kind(kind: object) -> str:
    if kind not in SCORES:
        raise ConfigError(f"selection.score: expected one of {', '.join(SCORES)}, got {kind!r}")
    return str(kind)


def rescore_entries(
    entries: Sequence[BestEntry], trials: TrialStats, score: str
) -> list[BestEntry]:
    """The entries of one list with their DSR and score recomputed against ``trials``.

    Called with the scope's statistics after a new run's trials were added, so that the
    list and the newcomer are scored against the same trials. Entries without daily moments
    (legacy) keep their DSR NaN and, under ``deflated_sharpe``, cannot hold their place.
    """
    kind = _check_score_kind(score)
    out = []
    for entry in entries:
        dsr, z = deflated_score(entry.daily, trials)
        out.append(replace(entry, dsr=dsr, score=_score_of(kind, entry.val_sharpe, z)))
    return out


def score_candidates(
    chosen: pd.DataFrame,
    daily: Mapping[str, np.ndarray],
    trials: Mapping[str, TrialStats],
    score: str,
) -> pd.DataFrame:
    """``chosen`` with each regime's candidate scored against its scope's trials.

    Parameters
    ----------
    chosen
        ``RunResult.chosen`` (its ``combination`` column locates the chosen combination).
    daily
        Per regime, the run's daily validation returns ``(days, combinations)``.
    trials
        Per regime, the scope's statistics with the run's trials added.
    score
        ``selection.score``.

    Returns
    -------
    DataFrame
        ``chosen`` with the run's own ``dsr`` replaced by the grid-wide one, and ``score``
        and the daily moments (``daily_sharpe, daily_skew, daily_kurtosis, daily_n``)
        added; NaN where a regime has no chosen combination or no trials.
    """
    kind = _check_score_kind(score)
    columns = {
        name: [] for name in ("dsr", "score", "daily_sharpe", "daily_skew", "daily_kurtosis")
    }
    counts = []
    # Plain lists of the three columns read: the runner calls this for every configuration,
    # and pandas' row dicts and column inserts cost several ms on a 5-row frame.
    missing = [None] * len(chosen)
    for regime, k, val_sharpe in zip(
        chosen["regime"].tolist(),
        chosen["combination"].tolist() if "combination" in chosen.columns else missing,
        chosen["val_sharpe"].tolist() if "val_sharpe" in chosen.columns else missing,
        strict=True,
    ):
        regime = str(regime)
        if regime not in daily or regime not in trials or k is None or pd.isna(k):
            moments, dsr, z = None, math.nan, math.nan
        else:
            moments = DailyMoments.of(daily[regime][:, int(k)])
            dsr, z = deflated_score(moments, trials[regime])
        columns["dsr"].append(dsr)
        columns["score"].append(_score_of(kind, _number(val_sharpe), z))
        columns["daily_sharpe"].append(moments.sharpe if moments else math.nan)
        columns["daily_skew"].append(moments.skew if moments else math.nan)
        columns["daily_kurtosis"].append(moments.kurtosis if moments else math.nan)
        counts.append(moments.n if moments else pd.NA)
    # The frame built once, ``chosen``'s columns in place (``dsr`` replaced), the new ones
    # after them, as assigning them one by one to a copy would.
    data = {name: chosen[name].array for name in chosen.columns}
    data.update({name: np.asarray(values, dtype=float) for name, values in columns.items()})
    data["daily_n"] = pd.array(counts, dtype="Int64")
    out = pd.DataFrame(data, index=chosen.index)
    out.attrs = dict(chosen.attrs)
    return out


@dataclass(frozen=True)
class SelectionDecision:
    """The outcome of :func:`select` for one run.

    Attributes
    ----------
    keep : bool
        The run sits in at least one list after the update: keep its model file.
    improved_regimes : tuple of str
        Regimes whose list the run entered, in the order of ``chosen``.
    new_bests : Mapping[(symbol, regime), tuple of BestEntry]
        The *full* mapping after the update (every input key, plus new ones), each list
        sorted best first; untouched lists are the input's entries, sorted. Read-only.
    changed_keys : tuple of (symbol, regime)
        The keys whose list differs from the input (to write only those).
    dropped_run_ids : tuple
        Runs that were in some list before and are in none after: their files go. The run
        being selected is not listed when it was in no list before; ``keep`` says its fate.
    removed : tuple of BestEntry
        Entries pushed out of (or trimmed from) a list.
    reasons : Mapping[str, str]
        One line per regime of ``chosen``: why the run entered its list or not.
    """

    keep: bool
    improved_regimes: tuple[str, ...]
    new_bests: Mapping[BestsKey, tuple[BestEntry, ...]]
    changed_keys: tuple[BestsKey, ...]
    dropped_run_ids: tuple[RunId, ...]
    removed: tuple[BestEntry, ...] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)


def _run_key(run_id: RunId) -> tuple[int, Any]:
    # Ints before strings so a mixed set still sorts (and deterministically).
    return (0, run_id) if isinstance(run_id, (int, np.integer)) else (1, str(run_id))


def _time_key(when: datetime | None) -> tuple[int, float]:
    # Unknown times (a fresh candidate) rank after every recorded one: incumbents stay ahead.
    if when is None:
        return (1, 0.0)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (0, when.timestamp())


def _order(entry: BestEntry) -> tuple[Any, ...]:
    return (-entry.score, _time_key(entry.achieved_at), _run_key(entry.run_id))


def _check_settings(
    keep_top_n: object,
    min_score: object,
    min_improvement_threshold: object,
    absolute_improvement_floor: object,
    min_trades: object,
    min_dsr: object,
) -> None:
    if isinstance(keep_top_n, bool) or not isinstance(keep_top_n, (int, np.integer)):
        raise ConfigError(
            f"model_management.keep_top_n_per_regime: expected an integer >= 1, got {keep_top_n!r}"
        )
    if keep_top_n < 1:
        raise ConfigError(
            f"model_management.keep_top_n_per_regime: expected an integer >= 1, got {keep_top_n!r}"
        )
    if isinstance(min_trades, bool) or not isinstance(min_trades, (int, np.integer)):
        raise ConfigError(f"selection.min_trades: expected an integer >= 0, got {min_trades!r}")
    if min_trades < 0:
        raise ConfigError(f"selection.min_trades: expected an integer >= 0, got {min_trades!r}")
    for key, value, lower, upper in (
        ("selection.min_score", min_score, None, None),
        ("model_management.min_improvement_threshold", min_improvement_threshold, 0.0, None),
        ("selection.absolute_improvement_floor", absolute_improvement_floor, 0.0, None),
        ("selection.min_dsr", min_dsr, 0.0, 1.0),
    ):
        ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
        bad = not ok or not math.isfinite(float(value))
        bad = bad or (lower is not None and value < lower) or (upper is not None and value > upper)
        if bad:
            if upper is not None:
                bound = f"a number between {lower:g} and {upper:g}"
            elif lower is not None:
                bound = f"a finite number >= {lower:g}"
            else:
                bound = "a finite number"
            raise ConfigError(f"{key}: expected {bound}, got {value!r}")


def _check_bests(
    bests: Mapping[BestsKey, Sequence[BestEntry]],
) -> dict[BestsKey, list[BestEntry]]:
    if not isinstance(bests, Mapping):
        raise DataError(
            f"bests: expected a mapping (symbol, regime) -> list of BestEntry, "
            f"got {type(bests).__name__}"
        )
    out: dict[BestsKey, list[BestEntry]] = {}
    for key, entries in bests.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise DataError(f"bests: keys must be (symbol, regime) pairs, got {key!r}")
        seen: set[Any] = set()
        checked = []
        for entry in entries:
            if not isinstance(entry, BestEntry):
                raise DataError(f"bests[{key!r}]: expected BestEntry items, got {entry!r}")
            if (entry.symbol, entry.regime) != key:
                raise DataError(
                    f"bests[{key!r}]: entry of run {entry.run_id!r} belongs to "
                    f"{(entry.symbol, entry.regime)!r}"
                )
            if not math.isfinite(entry.score):
                raise DataError(
                    f"bests[{key!r}]: entry of run {entry.run_id!r} has score {entry.score!r}; "
                    "scores in a list must be finite"
                )
            if _run_key(entry.run_id) in seen:
                raise DataError(f"bests[{key!r}]: run {entry.run_id!r} appears twice")
            seen.add(_run_key(entry.run_id))
            checked.append(entry)
        out[key] = sorted(checked, key=_order)
    return out


def _check_chosen(chosen: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(chosen, pd.DataFrame):
        raise DataError(f"chosen: expected a DataFrame, got {type(chosen).__name__}")
    missing = [c for c in _CHOSEN_COLUMNS if c not in chosen.columns]
    if missing:
        raise DataError(
            f"chosen: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, chosen.columns))}"
        )
    dup = chosen["regime"][chosen["regime"].duplicated()]
    if len(dup):
        raise DataError(f"chosen: regime {dup.iloc[0]!r} has more than one row")
    return chosen


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _lookback(value: Any) -> int | None:
    """The lookback window, None where the combination does not use one."""
    number = _number(value)
    return int(number) if math.isfinite(number) and number > 0 else None


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def rule_settings(settings: Any) -> dict[str, Any]:
    """The rule's keyword arguments of :func:`select` from a configuration's ``selection``
    and ``model_management`` sections (:class:`forexgrid.config.Settings`)."""
    sel, management = settings.selection, settings.model_management
    return {
        "keep_top_n": management.keep_top_n_per_regime,
        "min_score": sel.min_score,
        "min_improvement_threshold": management.min_improvement_threshold,
        "absolute_improvement_floor": sel.absolute_improvement_floor,
        "min_trades": sel.min_trades,
        "min_dsr": sel.min_dsr,
    }


def _ineligible(
    row: Mapping[str, Any], *, min_trades: int, min_score: float, min_dsr: float
) -> str | None:
    """Why a regime's candidate may not compete, or None when it may."""
    trades, sharpe = _number(row["val_trades"]), _number(row["val_sharpe"])
    score = _number(row.get("score", sharpe))
    dsr = _number(row.get("dsr", math.nan))
    if not math.isfinite(trades) or trades < min_trades:
        shown = "no" if not math.isfinite(trades) else f"{int(trades)}"
        return f"not eligible: {shown} validation trades < min_trades {min_trades}"
    if not math.isfinite(sharpe):
        return f"not eligible: validation Sharpe is {sharpe}"
    if not math.isfinite(score):
        return f"not eligible: score is {score} (no deflated Sharpe ratio: too few trials?)"
    if sharpe < min_score:
        return f"below min_score: validation Sharpe {_fmt(sharpe)} < {_fmt(min_score)}"
    if min_dsr > 0 and not dsr >= min_dsr:
        return f"below min_dsr: DSR {_fmt(dsr)} < {_fmt(min_dsr)}"
    return None


def _candidate(
    row: Mapping[str, Any],
    run_id: RunId,
    symbol: str,
    config_hash: str,
    achieved_at: datetime | None,
) -> BestEntry:
    sharpe = _number(row["val_sharpe"])
    n = _number(row.get("daily_n", math.nan))
    daily = (
        DailyMoments(
            _number(row["daily_sharpe"]),
            _number(row["daily_skew"]),
            _number(row["daily_kurtosis"]),
            int(n),
        )
        if math.isfinite(n)
        else None
    )
    return BestEntry(
        run_id=run_id,
        config_hash=config_hash,
        regime=str(row["regime"]),
        symbol=symbol,
        score=_number(row.get("score", sharpe)),
        signal=str(row["signal"]),
        threshold=_number(row["threshold"]),
        lookback=_lookback(row["lookback"]),
        test_sharpe=_number(row.get("test_sharpe", math.nan)),
        achieved_at=achieved_at,
        dsr=_number(row.get("dsr", math.nan)),
        val_sharpe=sharpe,
        daily=daily,
    )


def select(
    run_id: RunId,
    symbol: str,
    chosen: pd.DataFrame,
    bests: Mapping[BestsKey, Sequence[BestEntry]],
    *,
    keep_top_n: int,
    min_score: float,
    min_improvement_threshold: float,
    absolute_improvement_floor: float,
    min_trades: int,
    min_dsr: float = 0.0,
    config_hash: str = "",
    achieved_at: datetime | None = None,
    validation_window: tuple[date, date] | None = None,
    rules_versions: Mapping[str, str] | None = None,
) -> SelectionDecision:
    """Decide whether a run enters the per-regime bests, and what the bests become.

    Pure: no database, no files, inputs untouched. See the module docstring for the rule.

    Parameters
    ----------
    run_id : int or str
        The run being selected.
    symbol : str
        Its symbol (case-insensitive; stored upper case).
    chosen : DataFrame
        One row per regime with at least ``regime, signal, threshold, lookback, val_sharpe,
        val_trades``: ``RunResult.chosen``, scored by :func:`score_candidates` (whose
        ``score``, ``dsr`` and daily moments are then used; without a ``score`` column the
        score is the validation Sharpe). ``test_sharpe`` is carried when present.
    bests : Mapping[(symbol, regime), sequence of BestEntry]
        The current lists of one validation window, for all symbols (in any order; they are
        sorted here), their scores on the same scale as the candidates'
        (:func:`rescore_entries`).
    keep_top_n : int
        ``model_management.keep_top_n_per_regime`` (>= 1).
    min_score : float
        ``selection.min_score``: the lowest validation Sharpe that may enter a list.
    min_improvement_threshold : float
        ``model_management.min_improvement_threshold``, relative to ``|weakest|``.
    absolute_improvement_floor : float
        ``selection.absolute_improvement_floor``: the least margin, whatever the weakest.
    min_trades : int
        ``selection.min_trades``: validation trades needed in the regime.
    min_dsr : float
        ``selection.min_dsr``: the lowest grid-wide DSR that may enter a list (0 to 1).
    config_hash : str, optional
        The run's configuration hash, stored in its entries.
    achieved_at : datetime, optional
        Stored in the run's entries (UTC; naive values are read as UTC).
    validation_window : (date, date), optional
        The run's validation window, stored in its entries.
    rules_versions : Mapping[str, str], optional
        Per regime, the rules version the run was scored under, stored in its entries.

    Returns
    -------
    SelectionDecision

    Raises
    ------
    ConfigError
        If a setting is out of range (named by its configuration key).
    DataError
        If ``chosen`` lacks a column or repeats a regime, or ``bests`` is malformed (an entry
        under the wrong key, a run twice in one list, a non-finite score).
    """
    _check_settings(
        keep_top_n,
        min_score,
        min_improvement_threshold,
        absolute_improvement_floor,
        min_trades,
        min_dsr,
    )
    if not isinstance(symbol, str) or not symbol.strip():
        raise DataError(f"symbol: expected a non-empty string, got {symbol!r}")
    symbol = symbol.strip().upper()
    chosen = _check_chosen(chosen)
    before = _check_bests(bests)
    after = {key: list(entries) for key, entries in before.items()}
    changed: set[BestsKey] = set()
    improved: list[str] = []
    removed: list[BestEntry] = []
    reasons: dict[str, str] = {}
    me = _run_key(run_id)
    versions = dict(rules_versions or {})

    for row in chosen.to_dict("records"):
        regime = str(row["regime"])
        key = (symbol, regime)
        reason = _ineligible(row, min_trades=min_trades, min_score=min_score, min_dsr=min_dsr)
        if reason is not None:
            reasons[regime] = reason
            # A result applied again that no longer qualifies takes the run's entry with it.
            own = [e for e in after.get(key, ()) if _run_key(e.run_id) == me]
            if own:
                after[key] = [e for e in after[key] if _run_key(e.run_id) != me]
                changed.add(key)
            continue
        entries = after.setdefault(key, [])
        if len(entries) > keep_top_n:
            # keep_top_n was lowered since this list was written.
            removed.extend(entries[keep_top_n:])
            del entries[keep_top_n:]
            changed.add(key)
        candidate = _candidate(row, run_id, symbol, config_hash, achieved_at)
        candidate = replace(
            candidate, validation_window=validation_window, rules_version=versions.get(regime)
        )
        entered, reason, out = _compete(
            candidate,
            entries,
            me,
            keep_top_n=keep_top_n,
            rel=min_improvement_threshold,
            floor=absolute_improvement_floor,
        )
        reasons[regime] = reason
        if out != entries:
            removed.extend(e for e in entries if e not in out and _run_key(e.run_id) != me)
            after[key] = out
            changed.add(key)
        if entered:
            improved.append(regime)

    new_bests = {key: tuple(entries) for key, entries in after.items() if entries or key in before}
    was_in = {_run_key(e.run_id): e.run_id for entries in before.values() for e in entries}
    now_in = {_run_key(e.run_id) for entries in new_bests.values() for e in entries}
    dropped = tuple(was_in[k] for k in sorted(set(was_in) - now_in))
    changed_keys = tuple(
        sorted(k for k in changed if tuple(before.get(k, ())) != new_bests.get(k, ()))
    )
    decision = SelectionDecision(
        keep=me in now_in,
        improved_regimes=tuple(improved),
        new_bests=MappingProxyType(new_bests),
        changed_keys=changed_keys,
        dropped_run_ids=dropped,
        removed=tuple(removed),
        reasons=MappingProxyType(reasons),
    )
    logger.debug(
        "selection run %r %s: keep=%s improved=%s dropped=%s",
        run_id,
        symbol,
        decision.keep,
        decision.improved_regimes,
        decision.dropped_run_ids,
    )
    return decision


def _compete(
    candidate: BestEntry,
    entries: list[BestEntry],
    me: tuple[int, Any],
    *,
    keep_top_n: int,
    rel: float,
    floor: float,
) -> tuple[bool, str, list[BestEntry]]:
    """Whether the eligible candidate enters, why, and the list afterwards."""
    # The run's own earlier entry (a result applied again) never competes with it and never
    # survives next to it: it is replaced, or removed when the run no longer qualifies.
    others = [e for e in entries if _run_key(e.run_id) != me]
    same = [e for e in others if candidate.config_hash and e.config_hash == candidate.config_hash]
    if same:
        # The same model retrained: it may only take its twin's place, never a second one.
        rivals, label = same, "same configuration's"
    elif len(others) >= keep_top_n:
        rivals, label = others, "weakest"
    else:
        new = sorted([*others, candidate], key=_order)
        return (
            True,
            f"entered: list not full ({len(others)}/{keep_top_n}), score {_fmt(candidate.score)}",
            new,
        )
    weakest = rivals[-1]
    margin = max(rel * abs(weakest.score), floor)
    if candidate.score > weakest.score + margin:
        new = sorted([e for e in others if e is not weakest] + [candidate], key=_order)
        return (
            True,
            f"entered: {_fmt(candidate.score)} beats the {label} score {_fmt(weakest.score)} "
            f"(run {weakest.run_id!r}) by more than {_fmt(margin)}; run {weakest.run_id!r} "
            "pushed out",
            new,
        )
    return (
        False,
        f"not enough improvement: {_fmt(candidate.score)} vs the {label} score "
        f"{_fmt(weakest.score)} (run {weakest.run_id!r}); needs > {_fmt(weakest.score + margin)}",
        others,
    )
