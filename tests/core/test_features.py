"""Tests of forexgrid.core.features: causality, the one windowed definition, reference values."""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections.abc import Callable
from importlib import resources
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forexgrid.core import features as feat
from forexgrid.core.features import (
    ENCODERS,
    build_features,
    build_targets,
    feature_names,
    features_from_windows,
    history_length,
    indicator_feature_names,
    indicator_features,
)
from forexgrid.data.timeframes import resample
from forexgrid.exceptions import ConfigError, DataError

UTC = "UTC"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sample_bars() -> pd.DataFrame:
    """The bundled real EURUSD 1h 2017 sample, read with plain pandas."""
    path = resources.files("forexgrid.data") / "samples" / "EURUSD_1h_2017_dukascopy.csv"
    with resources.as_file(path) as file:
        raw = pd.read_csv(file)
    raw.columns = [c.lower() for c in raw.columns]
    index = pd.DatetimeIndex(
        pd.to_datetime(raw.pop("time"), format="%d.%m.%Y %H:%M:%S.%f", utc=True), name="time"
    )
    bars = raw.astype("float64")
    bars.index = index
    return bars[["open", "high", "low", "close", "volume"]]


def make_bars(n: int, seed: int = 0, start: str = "2017-01-02", freq: str = "1h") -> pd.DataFrame:
    """Small deterministic random-walk bars (valid OHLC, positive volume)."""
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0.0, 2e-3, n)))
    open_ = np.r_[1.1, close[:-1]]
    spread = np.abs(rng.normal(0.0, 1e-3, n))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread),
            "low": np.minimum(open_, close) * (1 - spread),
            "close": close,
            "volume": rng.uniform(0.0, 1000.0, n),
        },
        index=pd.date_range(start, periods=n, freq=freq, tz=UTC, name="time"),
    )


def pos(bars: pd.DataFrame, when: str) -> int:
    """Position of the bar opening at ``when`` (UTC); fails loudly if absent."""
    return int(bars.index.get_loc(pd.Timestamp(when, tz=UTC)))


# --------------------------------------------------------------------------- causality


def assert_causal(
    builder: Callable[[pd.DataFrame], pd.DataFrame], bars: pd.DataFrame, cuts: list[int]
) -> None:
    """builder(bars[:T]) must equal builder(bars) on every row < T, for every T in cuts."""
    full = builder(bars)
    for cut in cuts:
        part = builder(bars.iloc[:cut])
        assert list(part.columns) == list(full.columns)
        np.testing.assert_allclose(
            part.to_numpy(dtype=float),
            full.iloc[:cut].to_numpy(dtype=float),
            rtol=1e-9,
            atol=0.0,
            equal_nan=True,
            err_msg=f"rows before T={cut} changed when later bars were added",
        )


# Each cut T is given by the time of the last row it keeps (row T - 1). Higher bars follow
# New York: in winter (EST) 4h bins start at 22, 02, 06, 10, 14, 18 UTC and trading dates
# at 22:00 UTC; in summer (EDT, from 2017-03-12 to 2017-11-05) an hour earlier.
CAUSAL_LAST_ROWS = [
    "2017-01-02 05:00",  # inside the warm-up: every row NaN
    "2017-03-07 05:00",  # just before a 4h boundary
    "2017-03-07 06:00",  # just after a 4h boundary (the 06:00 4h bar holds one 1h bar)
    "2017-03-07 08:00",
    "2017-03-07 21:00",  # just before a trading-date boundary (17:00 EST)
    "2017-03-07 22:00",  # just after it
    "2017-03-10 21:00",  # last bar before the weekend of the spring change
    "2017-03-12 21:00",  # first bar after it: Sunday 17:00 EDT
    "2017-03-13 00:00",  # just before a summer 4h boundary (01:00 UTC = 21:00 EDT)
    "2017-03-13 01:00",  # just after it
    "2017-11-03 20:00",  # last bar before the weekend of the autumn change (16:00 EDT)
    "2017-11-05 22:00",  # first bar after it: Sunday 17:00 EST
]


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("htf", [(), ("4h",), ("4h", "1d")], ids=["no_htf", "htf_4h", "htf_4h_1d"])
def test_features_are_causal(sample_bars, encoder, htf):
    cuts = [pos(sample_bars, when) + 1 for when in CAUSAL_LAST_ROWS]
    full = build_features(sample_bars, encoder=encoder, indicator_timeframes=htf)
    # Not vacuous: past the warm-up every column of the compared last rows is a number.
    for cut in cuts[1:]:
        assert full.iloc[cut - 1].notna().all(), f"row {cut - 1} has NaN features"
    assert_causal(
        lambda b: build_features(b, encoder=encoder, indicator_timeframes=htf), sample_bars, cuts
    )


def test_causality_check_detects_a_shifted_feature(sample_bars):
    cuts = [pos(sample_bars, when) + 1 for when in CAUSAL_LAST_ROWS[1:3]]

    def leaky(bars: pd.DataFrame) -> pd.DataFrame:
        frame = build_features(bars)
        frame["next_close"] = np.log(bars["close"].shift(-1) / bars["close"])
        return frame

    with pytest.raises(AssertionError, match="rows before T="):
        assert_causal(leaky, sample_bars, cuts)


def test_causality_check_detects_an_incomplete_higher_bar(sample_bars, monkeypatch):
    # Using a 4h bar from its open time instead of its completion time is a look-ahead:
    # at 06:00 it would use the 06:00-10:00 bar's close.
    monkeypatch.setattr(feat, "_completion_times", lambda index, tf: feat._times_ns(index))
    cuts = [pos(sample_bars, "2017-03-07 06:00") + 1]
    with pytest.raises(AssertionError, match="rows before T="):
        assert_causal(lambda b: build_features(b, indicator_timeframes=["4h"]), sample_bars, cuts)


def open_plus_length(index: pd.DatetimeIndex, tf: str) -> np.ndarray:
    """The old completion rule, open + timeframe, blind to daylight saving."""
    return feat._times_ns(index) + feat.timeframe_delta(tf).value


@pytest.mark.parametrize(
    ("tf", "start", "last_row"),
    [
        # The 4h bin of 01:00 New York on 2017-11-05 holds both 01:xx hours: 05:00-10:00
        # UTC, 5 hours. Open + 4h says complete at 09:00, the close of the 08:00 bar.
        ("4h", "2017-10-20", "2017-11-05 08:00"),
        # Trading date 2017-11-05 runs 21:00 UTC (17:00 EDT) to 22:00 UTC (17:00 EST), 25
        # hours. Open + 1 day says complete at 21:00, the close of the 20:00 bar.
        ("1d", "2017-10-01", "2017-11-05 20:00"),
    ],
    ids=["4h", "1d"],
)
def test_higher_bars_complete_at_their_exact_end_across_the_autumn_change(
    monkeypatch, tf, start, last_row
):
    # 24/7 bars (not FX hours), so the change-over Sunday has bars.
    bars = make_bars(24 * 40, seed=4, start=start)
    cuts = [pos(bars, last_row) + 1]

    def builder(b: pd.DataFrame) -> pd.DataFrame:
        return indicator_features(b, [tf])

    assert builder(bars).iloc[cuts[0] - 1].notna().all()
    assert_causal(builder, bars, cuts)
    # The check is not vacuous: open + timeframe leaks the next bar there.
    monkeypatch.setattr(feat, "_completion_times", open_plus_length)
    with pytest.raises(AssertionError, match="rows before T="):
        assert_causal(builder, bars, cuts)


# --------------------------------------------------------------------------- one definition


def hand_windows(bars: pd.DataFrame, rows: list[int], length: int) -> list[np.ndarray]:
    fields = [
        np.array([bars[name].to_numpy()[r - length + 1 : r + 1] for r in rows])
        for name in ("open", "high", "low", "close", "volume")
    ]
    times = bars.index.as_unit("ns").asi8
    fields.append(np.array([times[r - length + 1 : r + 1] for r in rows]))
    return fields


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("extra", [0, 7], ids=["exact_L", "longer_windows"])
def test_features_from_windows_matches_build_features(sample_bars, encoder, extra):
    bars = sample_bars.iloc[:400]
    length = history_length(encoder)
    rows = [length - 1 + extra, 100, 257, 399]
    windows = hand_windows(bars, rows, length + extra)
    got = features_from_windows(*windows, encoder=encoder, timeframe="1h")
    expected = build_features(bars, encoder=encoder).iloc[rows].to_numpy()
    assert got.shape == (len(rows), len(feature_names(encoder)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0.0)


def test_chunking_does_not_change_values(monkeypatch):
    bars = make_bars(300, seed=3)
    reference = build_features(bars, encoder="normalized")
    monkeypatch.setattr(feat, "_CHUNK_ROWS", 7)
    chunked = build_features(bars, encoder="normalized")
    np.testing.assert_array_equal(chunked.to_numpy(), reference.to_numpy())


# --------------------------------------------------------------------------- reference values


def slow_indicators(bars: pd.DataFrame, t: int, rsi=14, atr=14, vol=20, mom=10, window=32):
    """The obvious per-bar definitions, one bar at a time, in plain Python."""
    o, h, lo, c, v = (bars[k].tolist() for k in ("open", "high", "low", "close", "volume"))
    moves = [c[s] - c[s - 1] for s in range(t - rsi + 1, t + 1)]
    gain = sum(m for m in moves if m > 0) / rsi
    loss = sum(-m for m in moves if m < 0) / rsi
    true_ranges = [
        max(h[s] - lo[s], abs(h[s] - c[s - 1]), abs(lo[s] - c[s - 1]))
        for s in range(t - atr + 1, t + 1)
    ]
    log_volumes = [math.log1p(v[s]) for s in range(t - window + 1, t + 1)]
    return {
        "volatility": statistics.stdev(
            [math.log(c[s] / c[s - 1]) for s in range(t - vol + 1, t + 1)]
        ),
        "rsi": 50.0 if gain + loss == 0 else 100.0 * gain / (gain + loss),
        "atr": sum(true_ranges) / atr / c[t],
        "momentum": math.log(c[t] / c[t - mom]),
        "volume_rel": math.log1p(v[t]) - sum(log_volumes) / window,
    }


@pytest.mark.parametrize("encoder", ENCODERS)
def test_indicators_match_slow_reference(encoder):
    bars = make_bars(70, seed=11)
    frame = build_features(bars, encoder=encoder)
    for t in (32, 45, 69):
        expected = slow_indicators(bars, t)
        for name, value in expected.items():
            assert frame[name].iloc[t] == pytest.approx(value, rel=1e-10, abs=1e-15), name


def test_indicators_with_custom_windows_match_slow_reference():
    bars = make_bars(40, seed=5)
    kwargs = {"rsi_window": 3, "atr_window": 5, "volatility_window": 7, "momentum_window": 2}
    frame = build_features(bars, window=4, **kwargs)
    assert history_length("time_delta", window=4, **kwargs) == 8
    assert frame.iloc[:7].isna().all().all() and frame.iloc[7].notna().all()
    for t in (7, 20, 39):
        expected = slow_indicators(bars, t, rsi=3, atr=5, vol=7, mom=2, window=4)
        for name, value in expected.items():
            assert frame[name].iloc[t] == pytest.approx(value, rel=1e-10, abs=1e-15), name


@pytest.mark.parametrize(
    ("direction", "rsi"), [(0.0, 50.0), (1.0, 100.0), (-1.0, 0.0)], ids=["flat", "up", "down"]
)
def test_rsi_limits(direction, rsi):
    n = 40
    close = 1.2 + direction * 1e-3 * np.arange(n)
    bars = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": np.zeros(n)},
        index=pd.date_range("2017-01-02", periods=n, freq="1h", tz=UTC),
    )
    frame = build_features(bars, encoder="normalized")
    assert frame["rsi"].iloc[-1] == rsi
    assert frame["volume_rel"].iloc[-1] == 0.0  # zero volume stays finite
    if direction == 0.0:
        assert frame["volatility"].iloc[-1] == 0.0
        z_cols = [c for c in frame.columns if c.startswith("z_")]
        assert (frame[z_cols].iloc[-1] == 0.0).all()  # flat window: 0s, not NaN


def test_time_delta_on_five_bars_by_hand():
    times = pd.DatetimeIndex(
        [
            "2017-01-04 00:00",
            "2017-01-04 01:00",
            "2017-01-04 02:00",
            "2017-01-04 05:00",
            "2017-01-04 06:00",
        ],
        tz=UTC,
    )
    bars = pd.DataFrame(
        {
            "open": [1.00, 1.02, 1.01, 1.05, 1.04],
            "high": [1.03, 1.04, 1.06, 1.07, 1.05],
            "low": [0.99, 1.00, 1.00, 1.03, 1.01],
            "close": [1.02, 1.01, 1.05, 1.04, 1.02],
            "volume": [10.0, 20.0, 0.0, 40.0, 50.0],
        },
        index=times,
    )
    windows = {
        "window": 3,
        "rsi_window": 2,
        "atr_window": 2,
        "volatility_window": 2,
        "momentum_window": 2,
    }
    frame = build_features(bars, timeframe="1h", **windows)
    assert frame.iloc[:3].isna().all().all()
    row = frame.iloc[4]  # bar 06:00 (a Wednesday); previous bar 05:00
    log = math.log
    assert row["ret_open_lag0"] == pytest.approx(log(1.04 / 1.04))
    assert row["ret_high_lag0"] == pytest.approx(log(1.05 / 1.04))
    assert row["ret_low_lag0"] == pytest.approx(log(1.01 / 1.04))
    assert row["ret_close_lag0"] == pytest.approx(log(1.02 / 1.04))
    assert row["ret_open_lag1"] == pytest.approx(log(1.05 / 1.05))
    assert row["ret_close_lag1"] == pytest.approx(log(1.04 / 1.05))
    assert row["ret_high_lag2"] == pytest.approx(log(1.06 / 1.01))
    assert row["ret_close_lag2"] == pytest.approx(log(1.05 / 1.01))
    assert row["dt"] == 1.0
    assert frame["dt"].iloc[3] == 3.0  # 02:00 -> 05:00 is three 1h bars
    assert row["hour_sin"] == pytest.approx(1.0) and row["hour_cos"] == pytest.approx(
        0.0, abs=1e-15
    )
    assert row["weekday_sin"] == pytest.approx(math.sin(2 * math.pi * 2 / 7))
    assert row["weekday_cos"] == pytest.approx(math.cos(2 * math.pi * 2 / 7))
    assert row["momentum"] == pytest.approx(log(1.02 / 1.05))
    assert row["rsi"] == pytest.approx(100.0 * 0.0 / (0.01 + 0.02))
    assert list(frame.columns[:3]) == ["ret_open_lag2", "ret_open_lag1", "ret_open_lag0"]


def test_absolute_and_normalized_blocks():
    bars = make_bars(80, seed=2)
    absolute = build_features(bars, encoder="absolute", window=8)
    for field in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(absolute[f"{field}_lag0"].iloc[40:], bars[field].iloc[40:])
        np.testing.assert_array_equal(
            absolute[f"{field}_lag7"].iloc[40:], bars[field].shift(7).iloc[40:]
        )
    normalized = build_features(bars, encoder="normalized", window=8).dropna()
    z_close = normalized[[f"z_close_lag{k}" for k in range(7, -1, -1)]].to_numpy()
    np.testing.assert_allclose(z_close.mean(axis=1), 0.0, atol=1e-9)
    np.testing.assert_allclose(z_close.std(axis=1), 1.0, rtol=1e-9)


def test_htf_values_come_from_the_last_completed_higher_bar(sample_bars):
    bars = sample_bars.loc[:"2017-03-09"]
    # Hand resample, valid in winter only (EST = UTC-5, so 17:00 New York = UTC + 2h at
    # midnight): 4h bins at 22, 02, 06, ... UTC and daily bins from 22:00 UTC.
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    shift = pd.Timedelta(hours=2)
    bars_4h = bars.groupby((bars.index + shift).floor("4h") - shift).agg(agg)
    bars_1d = bars.groupby((bars.index + shift).floor("1D") - shift).agg(agg)
    frame = build_features(bars, indicator_timeframes=["4h", "1d"])
    cases = [
        # (1h bar, higher timeframe, label of the higher bar expected to be used)
        ("2017-03-07 09:00", "4h", bars_4h, "2017-03-07 06:00"),  # closes 10:00 = completion
        ("2017-03-07 08:00", "4h", bars_4h, "2017-03-07 02:00"),  # 06:00 bar not complete
        ("2017-03-07 05:00", "4h", bars_4h, "2017-03-07 02:00"),
        ("2017-03-07 04:00", "4h", bars_4h, "2017-03-06 22:00"),
        ("2017-03-07 21:00", "1d", bars_1d, "2017-03-06 22:00"),  # Tuesday's session, done
        ("2017-03-07 20:00", "1d", bars_1d, "2017-03-05 22:00"),  # Monday's
    ]
    for when, tf, higher, label in cases:
        k = pos(higher, label)
        expected = slow_indicators(higher, k)
        row = frame.loc[pd.Timestamp(when, tz=UTC)]
        for name in ("volatility", "rsi", "atr", "momentum"):
            assert row[f"htf_{tf}_{name}"] == pytest.approx(expected[name], rel=1e-10), (
                when,
                tf,
                name,
            )


def higher_bar_ends(higher: pd.DataFrame, tf: str) -> list[pd.Timestamp]:
    """Each higher bar's end, in plain Python: its New York wall time plus 4h or a day."""
    new_york = ZoneInfo("America/New_York")
    step = dt.timedelta(hours=4) if tf == "4h" else dt.timedelta(days=1)
    ends = []
    for label in higher.index.to_pydatetime():
        wall = label.astimezone(new_york).replace(tzinfo=None) + step
        ends.append(pd.Timestamp(wall.replace(tzinfo=new_york)).tz_convert(UTC))
    return ends


@pytest.mark.parametrize("tf", ["4h", "1d"])
@pytest.mark.parametrize(
    ("first", "last"),
    [("2017-03-08", "2017-03-15"), ("2017-11-01", "2017-11-08")],
    ids=["spring", "autumn"],
)
def test_htf_values_use_only_higher_bars_ended_by_the_close(sample_bars, tf, first, last):
    # The real sample across a clock change: at every 1h bar t of the week around it, the
    # higher-timeframe columns are the indicators of the latest higher bar that ended at or
    # before t's close (t + 1h), with each end computed by hand in New York wall time.
    bars = sample_bars.loc[:last]
    higher = resample(bars, tf)
    ends = higher_bar_ends(higher, tf)
    frame = indicator_features(bars, [tf])
    rows = bars.loc[first:last].index
    used_labels = set()
    for when in rows:
        close = when + pd.Timedelta(hours=1)
        k = max(i for i, end in enumerate(ends) if end <= close)
        assert ends[k] <= close and (k + 1 == len(ends) or ends[k + 1] > close)
        expected = slow_indicators(higher, k)
        for name in ("volatility", "rsi", "atr", "momentum"):
            assert frame.loc[when, f"htf_{tf}_{name}"] == pytest.approx(
                expected[name], rel=1e-10
            ), (when, name)
        used_labels.add(higher.index[k])
    # Across the change the labels move by an hour in UTC: both offsets are exercised.
    wall_hours = {label.tz_convert("America/New_York").hour for label in used_labels}
    assert wall_hours == ({17, 21, 1, 5, 9, 13} if tf == "4h" else {17})
    assert len({label.hour for label in used_labels if label.hour in (21, 22)}) == 2


def test_htf_columns_follow_base_columns(sample_bars):
    frame = build_features(sample_bars.iloc[:300], encoder="absolute", indicator_timeframes=["H4"])
    assert list(frame.columns) == feature_names("absolute") + indicator_feature_names(["4h"])
    assert frame.index.equals(sample_bars.index[:300])
    assert indicator_feature_names(["4h"]) == [
        "htf_4h_volatility",
        "htf_4h_rsi",
        "htf_4h_atr",
        "htf_4h_momentum",
    ]
    alone = indicator_features(sample_bars.iloc[:300], ["4h"])
    pd.testing.assert_frame_equal(alone, frame[alone.columns])


# --------------------------------------------------------------------------- edge cases, errors


def test_fewer_bars_than_history_gives_all_nan_frame():
    bars = make_bars(20)
    frame = build_features(bars, indicator_timeframes=["4h"])
    assert frame.shape == (20, len(feature_names("time_delta")) + 4)
    assert frame.isna().all().all()
    assert build_features(bars.iloc[:0]).shape == (0, len(feature_names("time_delta")))


def test_first_rows_nan_then_complete():
    bars = make_bars(100)
    frame = build_features(bars)
    length = history_length("time_delta")
    assert length == 33
    assert frame.iloc[: length - 1].isna().all().all()
    assert frame.iloc[length - 1 :].notna().all().all()


def test_unknown_encoder_lists_valid_names():
    message = "unknown encoder 'delta'; expected one of time_delta, absolute, normalized"
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_features(make_bars(50), encoder="delta")
    with pytest.raises(ValueError, match=re.escape(message)):
        history_length("delta")


@pytest.mark.parametrize("htf", ["1h", "15m"], ids=["same", "finer"])
def test_indicator_timeframe_must_be_coarser(htf):
    message = (
        f"indicator timeframe '{htf}' is not coarser than the bars' timeframe '1h'; "
        "indicator_timeframes must be higher timeframes"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        build_features(make_bars(50), indicator_timeframes=["4h", htf])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 1}, "features.window: must be an integer >= 2, got 1"),
        ({"rsi_window": 0}, "features.rsi_window: must be an integer >= 2, got 0"),
        ({"momentum_window": 2.5}, "features.momentum_window: must be an integer >= 2, got 2.5"),
        ({"atr_window": True}, "features.atr_window: must be an integer >= 2, got True"),
    ],
    ids=["window", "rsi", "float", "bool"],
)
def test_bad_window_sizes(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_features(make_bars(50), **kwargs)


def test_bad_bars_and_windows_are_data_errors():
    bars = make_bars(50)
    with pytest.raises(DataError, match=re.escape("bars are missing column(s) volume")):
        build_features(bars.drop(columns="volume"))
    with pytest.raises(DataError, match=re.escape("tz-aware (UTC) DatetimeIndex")):
        build_features(bars.tz_localize(None))
    windows = hand_windows(bars, [40, 41], 20)
    with pytest.raises(DataError, match=re.escape("windows have 20 bars but encoder")):
        features_from_windows(*windows, encoder="absolute", timeframe="1h")
    windows[2] = windows[2][:, 1:]
    with pytest.raises(DataError, match=re.escape("arrays differ in shape")):
        features_from_windows(*windows, encoder="absolute", timeframe="1h")


positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(
    closes=st.lists(positive, min_size=34, max_size=60),
    volumes=st.lists(st.floats(min_value=0.0, max_value=1e12), min_size=60, max_size=60),
    encoder=st.sampled_from(ENCODERS),
)
def test_features_are_finite_for_any_valid_bars(closes, volumes, encoder):
    close = np.array(closes)
    open_ = np.r_[close[0], close[:-1]]
    bars = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": np.array(volumes[: len(close)]),
        },
        index=pd.date_range("2017-01-02", periods=len(close), freq="15min", tz=UTC),
    )
    frame = build_features(bars, encoder=encoder)
    assert np.isfinite(frame.iloc[history_length(encoder) - 1 :].to_numpy()).all()


# --------------------------------------------------------------------------- targets


@pytest.mark.parametrize("horizon", [1, 3, 7])
def test_targets_by_hand(horizon):
    bars = make_bars(20, seed=9)
    target = build_targets(bars, horizon)
    close = bars["close"].tolist()
    for t in range(20 - horizon):
        assert target.iloc[t] == pytest.approx(math.log(close[t + horizon] / close[t]), rel=1e-12)
    assert target.iloc[-horizon:].isna().all()
    assert target.iloc[: 20 - horizon].notna().all()
    assert target.index.equals(bars.index) and target.name == "target"


@pytest.mark.parametrize("horizon", [0, -1, 1.5, True], ids=["zero", "negative", "float", "bool"])
def test_bad_horizon(horizon):
    with pytest.raises(
        ConfigError, match=re.escape(f"horizon: must be an integer >= 1, got {horizon!r}")
    ):
        build_targets(make_bars(10), horizon)


def test_datetime64_times_of_any_unit_are_accepted(sample_bars):
    bars = sample_bars.iloc[:100]
    rows = [50, 99]
    windows = hand_windows(bars, rows, 40)
    as_int = features_from_windows(*windows, encoder="time_delta", timeframe="H1")
    windows[5] = windows[5].astype("datetime64[ns]").astype("datetime64[us]")
    as_datetime = features_from_windows(*windows, encoder="time_delta", timeframe="1h")
    np.testing.assert_array_equal(as_datetime, as_int)
    assert as_int[:, feature_names("time_delta").index("dt")].tolist() == [1.0, 1.0]
