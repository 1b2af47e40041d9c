"""Tests of forexgrid.core.pbo_state: the incremental CSCV equals the from-scratch function
bit for bit, whatever the batches, and a damaged state is refused."""

from __future__ import annotations

import numpy as np
import pytest

from forexgrid.core import pbo as pbo_module
from forexgrid.core.pbo import PBOResult, probability_of_backtest_overfitting
from forexgrid.core.pbo_state import PBOState, PBOStateError


def _matrix(seed: int, n_days: int, n_trials: int) -> np.ndarray:
    """Noise with the awkward columns of real scopes: duplicates (also far apart and with
    -0.0 for 0.0), proportional columns, all-zero columns, part-time and constant halves."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_days, n_trials)) * 0.01 + rng.normal(0, 0.002, n_trials)
    x[:, rng.random(n_trials) < 0.15] = 0.0  # never traded in the window
    part = rng.random(n_trials) < 0.2
    x[: n_days // 2, part] = 0.0  # trades in one half only
    columns = [x]
    for _ in range(max(1, n_trials // 4)):
        k = int(rng.integers(n_trials))
        kind = rng.integers(4)
        if kind == 0:
            columns.append(x[:, [k]])  # duplicate
        elif kind == 1:
            columns.append(x[:, [k]] * 2.0)  # proportional: same Sharpe ratios, not equal
        elif kind == 2:
            columns.append(-np.zeros((n_days, 1)))  # -0.0 everywhere: equals the zeros
        else:
            constant = np.full((n_days, 1), 0.001)
            constant[: n_days // 3] = 0.0
            columns.append(constant)
    out = np.hstack(columns)
    return out[:, rng.permutation(out.shape[1])]


def _in_batches(x: np.ndarray, sizes: list[int], n_blocks: int, **kwargs) -> PBOState:
    state = PBOState.empty(x.shape[0], n_blocks)
    start = 0
    for size in sizes:
        state = state.add(
            x[:, start : start + size],
            earlier=lambda s=start, st=state: x[:, :s][:, st.first_column],
            **kwargs,
        )
        start += size
    assert start == x.shape[1]
    return state


def _random_sizes(rng: np.random.Generator, n: int) -> list[int]:
    cuts = np.sort(
        rng.choice(np.arange(1, n), size=min(n - 1, int(rng.integers(1, 8))), replace=False)
    )
    return list(np.diff(np.r_[0, cuts, n]).astype(int))


def assert_identical(got: PBOResult, expected: PBOResult) -> None:
    assert got.n_trials == expected.n_trials and got.n_blocks == expected.n_blocks
    assert got.n_splits == expected.n_splits
    for name in ("logits", "selected", "is_performance", "oos_performance"):
        a, b = getattr(got, name), getattr(expected, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(a, b, equal_nan=True), name
    # Bit for bit, NaN included.
    assert np.array_equal(
        np.float64(got.pbo).view(np.int64), np.float64(expected.pbo).view(np.int64)
    ) or (np.isnan(got.pbo) and np.isnan(expected.pbo))
    assert np.isnan(got.probability_of_loss) == np.isnan(expected.probability_of_loss)
    if not np.isnan(expected.probability_of_loss):
        assert got.probability_of_loss == expected.probability_of_loss


@pytest.mark.parametrize(
    ("n_days", "n_trials", "n_blocks", "seed"),
    [
        (42, 60, 16, 0),
        (43, 40, 10, 1),
        (23, 30, 6, 2),
        (17, 25, 2, 3),
        (9, 20, 16, 4),  # fewer days than blocks: 8 blocks used
        (7, 12, 8, 5),  # 6 blocks used
    ],
    ids=["42x60-S16", "43x40-S10", "23x30-S6", "17x25-S2", "9-days-S16", "7-days-S8"],
)
def test_any_partition_into_batches_equals_from_scratch(n_days, n_trials, n_blocks, seed):
    x = _matrix(seed, n_days, n_trials)
    expected = probability_of_backtest_overfitting(x, n_blocks)
    rng = np.random.default_rng(100 + seed)
    partitions = [[x.shape[1]], [1] * x.shape[1], [2, x.shape[1] - 2]]
    partitions += [_random_sizes(rng, x.shape[1]) for _ in range(6)]
    for sizes in partitions:
        state = _in_batches(x, sizes, n_blocks)
        assert state.n_trials == x.shape[1]
        assert_identical(state.result(), expected)


def test_every_prefix_equals_from_scratch_and_survives_a_round_trip():
    x = _matrix(7, 42, 50)
    state = PBOState.empty(42, 16)
    start = 0
    for size in (1, 1, 3, 10, 1, 20, x.shape[1] - 36):
        state = PBOState.from_bytes(state.to_bytes())  # as stored between queues
        state = state.add(
            x[:, start : start + size],
            earlier=lambda s=start, st=state: x[:, :s][:, st.first_column],
        )
        start += size
        assert_identical(state.result(), probability_of_backtest_overfitting(x[:, :start], 16))


def test_float32_batches_equal_float32_from_scratch():
    x = _matrix(8, 42, 40).astype(np.float32)
    expected = probability_of_backtest_overfitting(x, 16)
    assert_identical(_in_batches(x, [10, 5, 25, x.shape[1] - 40], 16).result(), expected)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_and_small_chunks_do_not_change_the_state(monkeypatch, threads):
    x = _matrix(9, 43, 80)
    expected = probability_of_backtest_overfitting(x, 10)
    monkeypatch.setattr(pbo_module, "_CACHE_CELLS", 7 * 20)  # many chunks, some of one row
    got = _in_batches(x, [30, 1, 49, x.shape[1] - 80], 10, threads=threads)
    assert_identical(got.result(), expected)


def test_batches_of_duplicates_and_of_nothing():
    x = _matrix(10, 42, 30)
    again = np.hstack([x, x[:, ::-1], x[:, :5] * 1.0])  # every later column a duplicate
    state = _in_batches(again, [30, 0, again.shape[1] - 30], 16)
    assert state.n_distinct == np.unique(x, axis=1).shape[1]
    assert_identical(state.result(), probability_of_backtest_overfitting(again, 16))


def test_fewer_than_two_trials_or_days_is_undefined_then_defined():
    x = _matrix(11, 42, 10)
    one = PBOState.empty(42, 16).add(x[:, :1])
    assert np.isnan(one.result().pbo) and one.result().n_trials == 1
    two = one.add(x[:, 1:], earlier=lambda: x[:, :1])
    assert_identical(two.result(), probability_of_backtest_overfitting(x, 16))
    short = PBOState.empty(1, 16).add(np.ones((1, 4)))
    assert_identical(short.result(), probability_of_backtest_overfitting(np.ones((1, 4)), 16))


def test_earlier_columns_that_changed_are_refused():
    x = _matrix(12, 42, 40)
    state = PBOState.empty(42, 16).add(x[:, :20])
    changed = x[:, :20][:, state.first_column].copy()
    changed[3, 0] += 1e-9
    with pytest.raises(PBOStateError, match="not the ones"):
        # The second batch's best beats some split's chosen column: a recount is needed.
        state.add(x[:, 20:] * 10.0, earlier=lambda: changed)
    with pytest.raises(PBOStateError, match="shape"):
        state.add(x[:, 20:] * 10.0, earlier=lambda: changed[:, 1:])


def test_a_damaged_state_is_refused():
    state = PBOState.empty(42, 16).add(_matrix(13, 42, 30))
    blob = state.to_bytes()
    restored = PBOState.from_bytes(blob)
    assert_identical(restored.result(), state.result())
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x40
    damaged = [blob[:-10], bytes(flipped), b"junk" + blob, b"", blob[:12]]
    for bad in damaged:
        with pytest.raises(PBOStateError):
            PBOState.from_bytes(bad)


def test_an_inconsistent_state_with_a_valid_checksum_is_refused():
    import hashlib
    import zlib

    state = PBOState.empty(42, 16).add(_matrix(14, 42, 30))
    blob = state.to_bytes()
    magic = len(b"FGPBOSTATE")
    body = bytearray(zlib.decompress(blob[magic + 16 :]))
    body[-8 - state.covers.size * 8 - 1] ^= 0x01  # a count in the last split's n_tied
    body = bytes(body)
    forged = b"FGPBOSTATE" + hashlib.blake2b(body, digest_size=16).digest() + zlib.compress(body)
    with pytest.raises(PBOStateError):
        PBOState.from_bytes(forged)


def test_covers_are_carried_along():
    x = _matrix(15, 42, 20)
    state = PBOState.empty(42, 16).add(x[:, :10], covers=[[7, 10]])
    state = state.add(
        x[:, 10:],
        covers=[[9, 5], [12, x.shape[1] - 15]],
        earlier=lambda: x[:, :10][:, state.first_column],
    )
    again = PBOState.from_bytes(state.to_bytes())
    assert again.covers.tolist() == [[7, 10], [9, 5], [12, x.shape[1] - 15]]


@pytest.mark.parametrize(
    "path",
    ["row-by-row", "short-table", "table"],
    ids=["row-by-row", "short-table", "table"],
)
def test_every_way_of_summing_halves_gives_the_same_numbers(monkeypatch, path):
    # Short rows use a table of prefix sums, long rows a loop over the combinations; both
    # add the same blocks in the same order, so the state and from-scratch agree across them.
    x = _matrix(16, 42, 70)
    expected = probability_of_backtest_overfitting(x, 16)
    if path == "row-by-row":
        monkeypatch.setattr(pbo_module._PrefixTable, "WIDTH", 0)
    elif path == "short-table":
        monkeypatch.setattr(pbo_module._PrefixTable, "BUDGET", 400 * 8 * 2 * x.shape[1])
    monkeypatch.setattr(pbo_module, "_CACHE_CELLS", 9 * 20)  # many chunks carry prefixes over
    assert_identical(probability_of_backtest_overfitting(x, 16), expected)
    got = _in_batches(x, [25, 3, x.shape[1] - 28], 16, threads=2)
    assert_identical(got.result(), expected)
