"""Regime definitions: seeding once, add/edit/delete/toggle with rules validated first."""

from __future__ import annotations

import re

import pytest

from forexgrid.core.regimes import DEFAULT_REGIMES, REGIME_NAME_RULE, Regime
from forexgrid.core.selection import BestEntry
from forexgrid.exceptions import RuleError, StorageError
from forexgrid.storage.bests import apply_bests, load_bests
from forexgrid.storage.queues import create_queue
from forexgrid.storage.regimes_repo import (
    active_regimes,
    add_regime,
    delete_regime,
    edit_regime,
    get_regime,
    list_regimes,
    seed_default_regimes,
    toggle_regime,
)
from forexgrid.storage.runs import queue_runs

RULE = f"a regime name is an identifier: {REGIME_NAME_RULE}"

BREAKOUT = {"trend_strength": "> 0.5", "volatility": "> 90th percentile", "volume": "> 2x average"}


def test_defaults_are_seeded_once(session):
    regimes = list_regimes(session)
    assert [r.to_regime() for r in regimes] == list(DEFAULT_REGIMES)
    assert all(r.is_default and r.active for r in regimes)
    assert seed_default_regimes(session) == 0
    assert len(list_regimes(session)) == 4


def test_a_deleted_default_is_never_seeded_again(db):
    with db.session_scope() as s:
        delete_regime(s, "calm_ranging")
    with db.session_scope() as s:
        assert seed_default_regimes(s) == 0
    db.upgrade()  # `forexgrid db upgrade` seeds too, and must not bring it back either
    with db.session_scope() as s:
        assert "calm_ranging" not in {r.name for r in list_regimes(s)}


def test_add_regime_from_the_guide(session):
    info = add_regime(session, "breakout_volatile", BREAKOUT, "Breakouts")
    assert (info.name, info.rules, info.description, info.active, info.is_default) == (
        "breakout_volatile",
        BREAKOUT,
        "Breakouts",
        True,
        False,
    )
    assert get_regime(session, "breakout_volatile") == info
    assert active_regimes(session)[-1] == Regime("breakout_volatile", BREAKOUT, "Breakouts")


def test_rules_may_be_json_text(session):
    info = add_regime(session, "up", '{"returns": "> 0"}')
    assert info.rules == {"returns": "> 0"}


@pytest.mark.parametrize(
    ("name", "rules", "message"),
    [
        (
            "bad",
            {"trend": "> 0.5"},
            "regime 'bad': unknown indicator 'trend'; did you mean 'trend_strength'?",
        ),
        ("bad", {"returns": "rising"}, "regime 'bad': rule 'returns': cannot parse 'rising'"),
        ("bad", "{not json", "regime 'bad': rules are not valid JSON"),
        ("bad", {}, "regime 'bad': no rules"),
        ("", {"returns": "> 0"}, "regime name must be a non-empty string, got ''"),
        ("all", {"returns": "> 0"}, "regime name 'all' is reserved"),
        (" padded", {"returns": "> 0"}, "regime name ' padded': ' ' is not allowed; " + RULE),
        ("my regime", {"returns": "> 0"}, "regime name 'my regime': ' ' is not allowed; " + RULE),
        ("r\u00e9gime", {"returns": "> 0"}, "regime name 'r\u00e9gime': '\u00e9' is not allowed"),
        ("up!", {"returns": "> 0"}, "regime name 'up!': '!' is not allowed; " + RULE),
        ("x" * 101, {"returns": "> 0"}, "at most 100 characters, got 101"),
        ("a\x00b", {"returns": "> 0"}, "regime name 'a\\x00b': '\\x00' is not allowed; " + RULE),
        ("a\nb", {"returns": "> 0"}, "regime name 'a\\nb': '\\n' is not allowed; " + RULE),
        (
            "x" * 1_000_000,
            {"returns": "> 0"},
            f"regime name {repr('x' * 1_000_000)[:200]}... (1,000,000 characters): at most "
            "100 characters, got 1,000,000",
        ),
    ],
    ids=[
        "unknown-indicator",
        "bad-condition",
        "bad-json",
        "no-rules",
        "empty-name",
        "reserved",
        "padded",
        "space",
        "non-ascii",
        "punctuation",
        "long",
        "nul",
        "newline",
        "huge-name",
    ],
)
def test_invalid_regimes_are_refused_and_nothing_is_stored(db, name, rules, message):
    with pytest.raises(RuleError, match=re.escape(message)):
        with db.session_scope() as s:
            add_regime(s, name, rules)
    with db.session_scope() as s:
        assert len(list_regimes(s)) == 4


@pytest.mark.parametrize(
    "name",
    ["bull_trending", "high_vol-breakout", "R2", "x" * 100],
    ids=["default", "dash", "short", "longest"],
)
def test_identifier_names_are_stored(db, name):
    with db.session_scope() as s:
        if name != "bull_trending":
            add_regime(s, name, {"returns": "> 0"})
        assert name in [r.name for r in list_regimes(s)]


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("d" * 1001, "regime 'up': description: at most 1000 characters, got 1,001"),
        ("a\x00b", "regime 'up': description must not contain NUL characters"),
    ],
    ids=["long", "nul"],
)
def test_invalid_descriptions_are_refused(db, description, message):
    with pytest.raises(RuleError, match=f"^{re.escape(message)}$"):
        with db.session_scope() as s:
            add_regime(s, "up", {"returns": "> 0"}, description)
    with db.session_scope() as s:
        assert len(list_regimes(s)) == 4


def test_duplicate_name(session):
    message = "regime 'bull_trending' already exists; edit it or choose another name"
    with pytest.raises(StorageError, match=re.escape(message)):
        add_regime(session, "bull_trending", {"returns": "> 0"})


def test_edit_regime(session):
    before = get_regime(session, "bull_trending")
    edited = edit_regime(
        session, "bull_trending", rules={"trend_strength": "> 0.8"}, description="Very strong up"
    )
    assert edited.rules == {"trend_strength": "> 0.8"} and edited.description == "Very strong up"
    assert edited.updated_at >= before.updated_at and edited.created_at == before.created_at
    with pytest.raises(RuleError, match=re.escape("rule 'returns': cannot parse 'up'")):
        edit_regime(session, "bull_trending", rules={"returns": "up"})
    assert get_regime(session, "bull_trending").rules == {"trend_strength": "> 0.8"}


def test_rename_carries_the_best_lists(session, spec):
    run = queue_runs(session, create_queue(session, spec).id)[0]
    apply_bests(
        session,
        {
            ("EURUSD", "bull_trending"): [
                BestEntry(
                    run.id, run.config_hash, "bull_trending", "EURUSD", 1.0, "direct", 0.0, 0
                )
            ]
        },
    )
    edit_regime(session, "bull_trending", new_name="bull")
    assert list(load_bests(session)) == [("EURUSD", "bull")]
    with pytest.raises(
        StorageError, match=re.escape("cannot rename regime 'bull': 'bear_trending' exists")
    ):
        edit_regime(session, "bull", new_name="bear_trending")


def test_toggle_and_active_regimes(session):
    assert toggle_regime(session, "volatile_ranging").active is False
    assert [r.name for r in active_regimes(session)] == [
        "bull_trending",
        "bear_trending",
        "calm_ranging",
    ]
    assert [r.name for r in list_regimes(session, active_only=True)] == [
        "bull_trending",
        "bear_trending",
        "calm_ranging",
    ]
    assert toggle_regime(session, "volatile_ranging").active is True
    assert toggle_regime(session, "volatile_ranging", active=True).active is True


def test_unknown_regime(session):
    message = (
        "no regime named 'nope' (known: bull_trending, bear_trending, volatile_ranging, "
        "calm_ranging)"
    )
    for call in (get_regime, delete_regime, toggle_regime):
        with pytest.raises(StorageError, match=re.escape(message)):
            call(session, "nope")
