"""Tests of forexgrid/exceptions.py: the error classes and the bounded echo of user input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forexgrid.exceptions import ForexgridError, PathError, quote_input


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("EURUSD", "'EURUSD'"),
        (1.5, "1.5"),
        (None, "None"),
        ([1, 2], "[1, 2]"),
        ("a\nb", "'a\\nb'"),  # one line: control characters are escaped
        ("x" * 198, repr("x" * 198)),  # 200 characters with the quotes: shown whole
    ],
    ids=["str", "float", "none", "list", "newline", "at-limit"],
)
def test_short_values_are_their_repr(value: object, expected: str) -> None:
    assert quote_input(value) == expected


def test_long_string_is_cut_with_its_length() -> None:
    shown = quote_input("x" * 10_000_000)
    assert shown == repr("x" * 200)[:200] + "... (10,000,000 characters)"


def test_long_bytes_and_other_values_say_what_was_counted() -> None:
    assert quote_input(b"\x00" * 100, limit=10).endswith("... (100 bytes)")
    assert quote_input(list(range(1000)), limit=10) == "[0, 1, 2, ... (a list of 1,000 items)"


def test_huge_integer_is_described_not_converted() -> None:
    # repr() of an int above 4300 digits raises ValueError in Python >= 3.11.
    assert quote_input(10**5000) == "<an integer of 5001 digits>"
    assert quote_input(-(10**5000)) == "<an integer of 5001 digits>"
    assert quote_input(99999999999999999999) == "99999999999999999999"


def test_a_failing_repr_does_not_escape() -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert quote_input(Hostile()) == "<a Hostile object>"


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        quote_input("x", limit=0)


@given(st.text() | st.binary() | st.integers() | st.lists(st.integers()))
def test_any_value_is_one_bounded_line(value: object) -> None:
    shown = quote_input(value, limit=50)
    assert "\n" not in shown
    assert len(shown) <= 50 + len("... (a list of 1,000,000,000 items)")


def test_path_error_is_a_forexgrid_error() -> None:
    assert issubclass(PathError, ForexgridError)
    assert issubclass(PathError, ValueError)
