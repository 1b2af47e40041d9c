"""The storage contract suite's backends and fixtures.

Every test that takes ``db`` (or ``session``, ``empty_url``) runs once per backend: an
SQLite file always, and PostgreSQL when ``FOREXGRID_TEST_DATABASE_URL`` names a server
(``.ci/run`` starts one with ``.ci/postgres.sh``). Each test gets a fresh database: a new
SQLite file, or a new PostgreSQL schema (selected through the URL's ``search_path``) that is
dropped afterwards.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from forexgrid.config import DATABASE_URL_ENV
from forexgrid.grid import GridSpec
from forexgrid.storage.database import Database

PG_URL_ENV = "FOREXGRID_TEST_DATABASE_URL"
PG_URL = os.environ.get(PG_URL_ENV, "").strip()
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(autouse=True)
def _no_user_database(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own FOREXGRID_DATABASE_URL must never be touched by the tests.
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An autocommit engine on the test server (creates and drops the per-test schemas)."""
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``"sqlite"`` or ``"postgresql"``."""
    return request.param


@pytest.fixture
def fresh_url(backend: str, tmp_path, request: pytest.FixtureRequest) -> Iterator:
    """Factory of URLs of new, empty databases of the backend under test (dropped after)."""
    schemas: list[str] = []
    count = iter(range(1_000_000))
    admin = request.getfixturevalue("pg_admin") if backend == "postgresql" else None

    def make() -> str:
        if admin is None:
            return f"sqlite:///{tmp_path / f'forexgrid{next(count)}.db'}"
        schema = f"fgtest_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        separator = "&" if "?" in PG_URL else "?"
        return f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}"

    yield make
    for schema in schemas:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def empty_url(fresh_url) -> str:
    """The URL of a new, empty database of the backend under test."""
    return fresh_url()


@pytest.fixture
def make_db(empty_url: str) -> Iterator:
    """Factory of Database objects on the test's database; all disposed afterwards."""
    made: list[Database] = []

    def make(url: str | None = None, **kwargs) -> Database:
        db = Database(url or empty_url, busy_timeout=kwargs.pop("busy_timeout", 10), **kwargs)
        made.append(db)
        return db

    yield make
    for db in made:
        db.dispose()


@pytest.fixture
def db(make_db) -> Database:
    """A Database with the current schema and the default regimes."""
    database = make_db()
    database.upgrade()
    return database


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    """An open transaction on ``db``, committed after the test."""
    with db.session_scope() as s:
        yield s


# ----------------------------------------------------------------------------- data


@pytest.fixture
def spec() -> GridSpec:
    """A 4-configuration grid of a cheap model (ridge: no heavy import)."""
    return GridSpec(
        model_types=["ridge"],
        symbols=["EURUSD"],
        timeframes=["1h", "4h"],
        days_history=[60],
        horizons=[1, 3],
    )


@pytest.fixture
def results_frame() -> pd.DataFrame:
    """A small ``RunResult.results`` (see :func:`fake_results`)."""
    return fake_results()


@pytest.fixture
def make_chosen():
    """The :func:`fake_chosen` factory."""
    return fake_chosen


@pytest.fixture
def frames_match():
    """The :func:`assert_frames_match` helper."""
    return assert_frames_match


def fake_results() -> pd.DataFrame:
    """A small ``RunResult.results`` with NaN, +inf and -inf metrics and a missing lookback."""
    combos = [("direct", 0.0, pd.NA), ("weighted", 0.5, 50), ("mean", 0.3, 100)]
    rows = []
    k = 0
    for regime in ("all", "bull_trending"):
        for split in ("validation", "test"):
            for signal, threshold, lookback in combos:
                k += 1
                rows.append(
                    {
                        "signal": signal,
                        "threshold": threshold,
                        "lookback": lookback,
                        "regime": regime,
                        "split": split,
                        "sharpe": math.nan if k == 2 else 0.1 * k,
                        "max_drawdown": 0.01 * k,
                        "win_rate": math.nan if k == 3 else 0.5,
                        "trades": 10 + k,
                        "total_return": -0.002 * k,
                        "profit_factor": math.inf if k == 4 else (-math.inf if k == 5 else 1.2),
                        "exposure": 0.25,
                    }
                )
    frame = pd.DataFrame(rows)
    frame["lookback"] = frame["lookback"].astype("Int64")
    return frame


def fake_chosen(val_sharpe: float = 1.5, regimes=("all", "bull_trending")) -> pd.DataFrame:
    """A ``RunResult.chosen`` with one chosen regime per name plus one without a choice."""
    rows = []
    for i, regime in enumerate(regimes):
        rows.append(
            {
                "regime": regime,
                "signal": "weighted",
                "threshold": 0.5,
                "lookback": 50,
                "val_sharpe": val_sharpe + i,
                "val_trades": 30,
                "val_max_drawdown": 0.05,
                "val_win_rate": 0.55,
                "test_sharpe": 0.8,
                "test_max_drawdown": 0.07,
                "test_win_rate": 0.52,
                "test_trades": 25,
                "test_total_return": 0.01,
                "dsr": 0.9,
                "test_psr": math.inf if i == 0 else 0.7,
                "reason": "chosen on validation",
                "combination": i,
            }
        )
    rows.append({"regime": "calm_ranging", "reason": "insufficient trades"})
    frame = pd.DataFrame(rows)
    for column in ("lookback", "val_trades", "test_trades", "combination"):
        frame[column] = frame[column].astype("Int64")
    return frame


def assert_frames_match(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns and values (NaN equal to NaN, inf kept), dtype families compared."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for column in expected.columns:
        g, e = got[column], expected[column]
        if pd.api.types.is_float_dtype(e):
            assert pd.api.types.is_float_dtype(g), column
            np.testing.assert_array_equal(g.to_numpy(float), e.to_numpy(float), err_msg=column)
        else:
            assert g.isna().tolist() == e.isna().tolist(), column
            assert [str(v) for v in g[g.notna()]] == [str(v) for v in e[e.notna()]], column
