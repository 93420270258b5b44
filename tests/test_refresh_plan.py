"""service.plan.plan_account: the windows one account's refresh asks for, exactly."""

from __future__ import annotations

import datetime as dt

import pytest

from service.plan import AccountPlan, plan_account


def D(day: int, month: int = 9) -> dt.date:
    return dt.date(2026, month, day)


def span(a: dt.date, b: dt.date) -> list[dt.date]:
    return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]


CASES = [
    # (name, days, max_days, oldest, expected fetch windows, expected too-old windows)
    ("nothing to fetch", [], 30, None, [], []),
    ("one settled month, one window", span(D(1), D(30)), 31, None, [(D(1), D(30))], []),
    (
        "two months cut at a 30-day cap",
        span(D(1), D(31, 10)),
        30,
        None,
        [(D(1), D(30)), (D(1, 10), D(30, 10)), (D(31, 10), D(31, 10))],
        [],
    ),
    ("gaps make separate windows", [D(1), D(2), D(3), D(7), D(8)], 30, None, [(D(1), D(3)), (D(7), D(8))], []),
    ("unsorted, repeated days", [D(8), D(1), D(7), D(1), D(2)], 30, None, [(D(1), D(2)), (D(7), D(8))], []),
    ("a 7-day cap", span(D(1), D(15)), 7, None, [(D(1), D(7)), (D(8), D(14)), (D(15), D(15))], []),
    (
        "a backfill reaching past the platform's history",
        span(D(1), D(20)),
        31,
        D(11),
        [(D(11), D(20))],
        [(D(1), D(10))],
    ),
    ("every day too old", span(D(1), D(5)), 31, D(6), [], [(D(1), D(5))]),
    ("the oldest servable day itself is fetched", [D(10)], 31, D(10), [(D(10), D(10))], []),
    (
        "too-old days are cut at the cap too",
        span(D(1, 7), D(20, 9)),
        31,
        D(1, 9),
        [(D(1), D(20))],
        [(D(1, 7), D(31, 7)), (D(1, 8), D(31, 8))],
    ),
    ("restated recent days after a gap", [D(1), *span(D(20), D(27))], 90, None, [(D(1), D(1)), (D(20), D(27))], []),
]


@pytest.mark.parametrize(
    ("days", "max_days", "oldest", "fetch", "too_old"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_plan_account(days, max_days, oldest, fetch, too_old):
    assert plan_account(days, max_days, oldest) == AccountPlan(fetch, too_old)


def test_plan_account_is_pure():
    days = span(D(1), D(10))
    before = list(days)
    assert plan_account(days, 3, D(5)) == plan_account(days, 3, D(5))
    assert days == before  # the caller's list is not changed
