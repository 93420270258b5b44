"""The pure alert and pacing functions (service/alerts.py), table-tested with exact figures.

Every date here is fixed (no clock): the functions take the as-of day as an input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from service.alerts import Alert, DayRow, FetchState, Link, StoreInfo, compute_alerts, compute_pacing, median
from service.budgets import Budget

AS_OF = dt.date(2026, 3, 18)  # a Wednesday
UTC = dt.UTC
STORE = StoreInfo("s1", "Acme", "USD")
META = Link("s1", "meta", "111", "USD")


def day(n: int) -> dt.date:
    """AS_OF - n days."""
    return AS_OF - dt.timedelta(days=n)


def rows_for(link: Link, amounts: dict[dt.date, str], billing: bool = False) -> list[DayRow]:
    return [
        DayRow(link.store_id, link.platform, link.account_id, d, D(v), D(v) if billing else None)
        for d, v in amounts.items()
    ]


def fresh(link: Link = META, at: dt.datetime | None = None) -> FetchState:
    return FetchState(link.platform, link.account_id, at or dt.datetime(2026, 3, 18, 6, 0, tzinfo=UTC))


def alerts_of(amounts: dict[dt.date, str], kind: str, as_of: dt.date = AS_OF, link: Link = META) -> list[Alert]:
    out = compute_alerts([STORE], [link], rows_for(link, amounts), [fresh(link)], [], as_of)
    return [a for a in out if a.kind == kind]


# --- spike ---------------------------------------------------------------------------------------


def history(value: str, days: int = 14, end: int = 1) -> dict[dt.date, str]:
    """``days`` days of ``value`` ending ``end`` days before AS_OF."""
    return {day(end + i): value for i in range(days)}


@pytest.mark.parametrize(
    "today_amount, hist_value, hist_days, expected",
    [
        ("300.00", "100.00", 14, False),  # exactly 3 x the median: not above it
        ("300.01", "100.00", 14, True),  # a cent above 3 x
        ("50.00", "10.00", 14, False),  # 5 x, but exactly 50: not above it
        ("50.01", "10.00", 14, True),  # above 3 x and above 50
        ("900.00", "100.00", 6, False),  # fewer than 7 stored days: no median to trust
        ("900.00", "100.00", 7, True),  # 7 stored days are enough
    ],
)
def test_spike_edges(today_amount, hist_value, hist_days, expected):
    amounts = {**history(hist_value, hist_days), AS_OF: today_amount}
    got = alerts_of(amounts, "spike")
    assert [a.day for a in got] == ([AS_OF] if expected else [])


def test_spike_median_of_uneven_history_and_detail():
    # previous 14 days: 7 x 10 and 7 x 30 -> median (10 + 30) / 2 = 20; 61 > 60 and > 50
    amounts = {**{day(1 + i): "10" for i in range(7)}, **{day(8 + i): "30" for i in range(7)}, AS_OF: "61"}
    (a,) = alerts_of(amounts, "spike")
    assert a.to_json() == {
        "store_id": "s1",
        "platform": "meta",
        "account_id": "111",
        "kind": "spike",
        "day": "2026-03-18",
        "detail": "Meta account 111 spent 61.00 USD on 2026-03-18, 3.1 x its median of 20.00 USD over "
        "the previous 14 days (alert above 3 x and above 50).",
    }
    assert median([D(3), D(1), D(2)]) == D(2) and median([D(1), D(4)]) == D("2.5")


def test_spike_stays_open_for_seven_days_then_closes():
    amounts = {**{day(7 + i): "100" for i in range(14)}, day(6): "500", **{day(i): "100" for i in range(6)}}
    assert [a.day for a in alerts_of(amounts, "spike")] == [day(6)]
    assert alerts_of(amounts, "spike", as_of=AS_OF + dt.timedelta(days=1)) == []


# --- stopped -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spent_days, zero_days, expected",
    [
        (14, 2, True),  # 2 days running after spending every day
        (14, 1, False),  # one zero day is not a stop
        (8, 2, True),  # 8 of 14: most
        (7, 2, False),  # 7 of 14: half is not most
        (14, 5, True),  # still stopped 5 days later (same alert: day of the first zero)
    ],
)
def test_stopped_edges(spent_days, zero_days, expected):
    amounts = {day(i): "0" for i in range(zero_days)}
    before = [day(zero_days + i) for i in range(14)]
    for i, d in enumerate(before):
        amounts[d] = "25.00" if i < spent_days else "0"
    got = alerts_of(amounts, "stopped")
    assert [a.day for a in got] == ([day(zero_days - 1)] if expected else [])


def test_stopped_detail_and_missing_days_are_not_zero():
    amounts = {**{day(2 + i): "25" for i in range(14)}, day(1): "0", AS_OF: "0"}
    (a,) = alerts_of(amounts, "stopped")
    assert a.detail == (
        "Meta account 111 spent nothing for 2 days running (2026-03-17 to 2026-03-18) after "
        "spending on 14 of the 14 days before."
    )
    assert a.key == "2026-03-17"
    # the same zeros one day further back, with the as-of day not fetched yet: the streak ends at
    # the latest stored day, and a day without a row is never counted as a zero
    amounts = {**{day(3 + i): "25" for i in range(14)}, day(2): "0", day(1): "0"}
    assert [a.day for a in alerts_of(amounts, "stopped")] == [day(2)]
    amounts = {**{day(3 + i): "25" for i in range(14)}, day(2): "0"}  # day(1) missing, AS_OF missing
    assert alerts_of(amounts, "stopped") == []


# --- pacing --------------------------------------------------------------------------------------

BILL = Link("s1", "meta", "111", "USD")


def weekday_amounts(first: dt.date, last: dt.date) -> dict[dt.date, str]:
    """Monday 10, Tuesday 20, ... Sunday 70."""
    out, d = {}, first
    while d <= last:
        out[d] = str(10 * (d.weekday() + 1))
        d += dt.timedelta(days=1)
    return out


def test_pacing_projection_is_weekday_aware():
    # 1-14 March 2026 (Sunday to Saturday, twice): month to date 2 x 280 = 560.
    # The 17 remaining days (15-31 March) = two full weeks (560) + Sun 70 + Mon 10 + Tue 20 = 660.
    # A flat daily average (40 x 17 = 680) would say 1240; weekday-aware says 1220.
    as_of = dt.date(2026, 3, 14)
    rows = rows_for(BILL, weekday_amounts(dt.date(2026, 3, 1), as_of), billing=True)
    pc = compute_pacing(STORE, [BILL], rows, as_of, D("1000"))
    assert (pc.month_to_date, pc.projected, pc.pace, pc.percent) == (D("560.00"), D("1220.00"), "over", D("22.0"))
    assert (pc.days_elapsed, pc.days_in_month, pc.complete, pc.note) == (14, 31, True, None)


def test_pacing_unseen_weekday_uses_the_average_of_the_days_so_far():
    # Sun 1 (70), Mon 2 (10), Tue 3 (20): 100 so far, 33.33... a day. 4-31 March = 4 of each weekday:
    # Sun/Mon/Tue 4 x 100 = 400, Wed-Sat 16 x 100/3 = 533.33...; 100 + 933.33... = 1033.33
    as_of = dt.date(2026, 3, 3)
    rows = rows_for(BILL, weekday_amounts(dt.date(2026, 3, 1), as_of), billing=True)
    pc = compute_pacing(STORE, [BILL], rows, as_of, None)
    assert (pc.month_to_date, pc.projected, pc.pace, pc.percent) == (D("100.00"), D("1033.33"), None, None)


@pytest.mark.parametrize(
    "spent, pace, alert",
    [
        ("1100.00", "on", False),  # exactly 10% over: on
        ("1100.01", "over", True),
        ("900.00", "on", False),  # exactly 10% under: on
        ("899.99", "under", True),
        ("1000.00", "on", False),
    ],
)
def test_pacing_band_edges(spent, pace, alert):
    # as of the month's last day the projection is the month's spend itself
    as_of = dt.date(2026, 2, 28)
    amounts = {dt.date(2026, 2, 1) + dt.timedelta(days=i): "0" for i in range(28)}
    amounts[dt.date(2026, 2, 10)] = spent
    rows = rows_for(BILL, amounts, billing=True)
    assert compute_pacing(STORE, [BILL], rows, as_of, D("1000")).pace == pace
    budgets = [Budget("s1", dt.date(2026, 2, 1), "", D("1000"), "USD")]
    got = [
        a
        for a in compute_alerts(
            [STORE], [BILL], rows, [fresh(BILL, dt.datetime(2026, 3, 1, tzinfo=UTC))], budgets, as_of
        )
        if a.kind == "pacing"
    ]
    assert len(got) == (1 if alert else 0)


def test_pacing_alert_detail_platform_budget_and_no_rate_is_said():
    as_of = dt.date(2026, 2, 28)
    eur = Link("s1", "google", "222", "EUR")
    rows = rows_for(BILL, {dt.date(2026, 2, 1) + dt.timedelta(days=i): "50" for i in range(28)}, billing=True)
    # the EUR account has spend but no rate into USD on two days: never counted as zero, said so
    rows += [
        DayRow("s1", "google", "222", dt.date(2026, 2, 1) + dt.timedelta(days=i), D("10"), None if i < 2 else D("11"))
        for i in range(28)
    ]
    budgets = [
        Budget("s1", dt.date(2026, 2, 1), "meta", D("1000.00"), "USD"),
        Budget("s1", dt.date(2026, 2, 1), "", D("1700"), "USD"),
    ]
    state = [fresh(BILL, dt.datetime(2026, 3, 1, tzinfo=UTC)), fresh(eur, dt.datetime(2026, 3, 1, tzinfo=UTC))]
    got = [a.to_json() for a in compute_alerts([STORE], [BILL, eur], rows, state, budgets, as_of) if a.kind == "pacing"]
    # the whole-store budget (1700) is on pace (1686: 0.8% under), so only Meta's budget alerts
    assert got == [
        {
            "store_id": "s1",
            "platform": "meta",
            "account_id": None,
            "kind": "pacing",
            "day": "2026-02-28",
            "detail": "Projected Meta spend for 2026-02 is 1,400.00 USD, 40.0% over the budget of 1,000.00 USD "
            "(month to date 1,400.00 USD after 28 of 28 days).",
        }
    ]
    pc = compute_pacing(STORE, [BILL, eur], rows, as_of, D("1700"))
    assert (pc.month_to_date, pc.projected, pc.pace, pc.complete) == (D("1686.00"), D("1686.00"), "on", False)
    assert pc.note == "no exchange rate into USD for 2 day(s) of Google Ads account 222"


def test_pacing_alert_when_incomplete_says_so():
    as_of = dt.date(2026, 2, 28)
    eur = Link("s1", "google", "222", "EUR")
    rows = rows_for(BILL, {dt.date(2026, 2, 1) + dt.timedelta(days=i): "50" for i in range(28)}, billing=True)
    rows += [DayRow("s1", "google", "222", dt.date(2026, 2, 1), D("10"), None)]
    budgets = [Budget("s1", dt.date(2026, 2, 1), "", D("2000"), "USD")]
    (a,) = [a for a in compute_alerts([STORE], [BILL, eur], rows, [], budgets, as_of) if a.kind == "pacing"]
    assert a.detail == (
        "Projected spend for 2026-02 is 1,400.00 USD, 30.0% under the budget of 2,000.00 USD "
        "(month to date 1,400.00 USD after 28 of 28 days); incomplete: 27 account-day(s) of 2026-02 "
        "up to 2026-02-28 not fetched yet; no exchange rate into USD for 1 day(s) of Google Ads "
        "account 222."
    )
    assert a.key == "2026-02:under" and a.platform is None


# --- stale ---------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 3, 19, 6, 0, tzinfo=UTC)  # the day after AS_OF, 06:00


@pytest.mark.parametrize(
    "last, now, expected",
    [
        (dt.datetime(2026, 3, 17, 6, 0, tzinfo=UTC), NOW, None),  # exactly 2 days old: not older
        (
            dt.datetime(2026, 3, 17, 5, 59, 59, tzinfo=UTC),
            NOW,
            "Meta's latest successful fetch was at 2026-03-17 05:59 UTC, more than 2 days old on 2026-03-19.",
        ),
        # asked later about an earlier day: judged at the end of the day after it (2026-03-19 23:59:59.999999)
        (dt.datetime(2026, 3, 17, 23, 59, 59, 999999, tzinfo=UTC), dt.datetime(2026, 4, 1, tzinfo=UTC), None),
        (
            dt.datetime(2026, 3, 17, 23, 59, 59, 999998, tzinfo=UTC),
            None,
            "Meta's latest successful fetch was at 2026-03-17 23:59 UTC, more than 2 days old on 2026-03-19.",
        ),
        (None, NOW, "Meta has never been fetched successfully for this store."),
    ],
)
def test_stale(last, now, expected):
    state = [FetchState("meta", "111", last)]
    got = [a for a in compute_alerts([STORE], [META], [], state, [], AS_OF, now) if a.kind == "stale"]
    assert [(a.platform, a.account_id, a.day, a.detail) for a in got] == (
        [] if expected is None else [("meta", None, AS_OF, expected)]
    )


def test_stale_is_per_platform_and_not_for_an_unconfigured_platform_without_data():
    second = Link("s1", "meta", "112", "USD")
    state = [
        FetchState("meta", "111", dt.datetime(2026, 3, 10, tzinfo=UTC)),
        FetchState("meta", "112", dt.datetime(2026, 3, 18, tzinfo=UTC)),
    ]
    assert [a for a in compute_alerts([STORE], [META, second], [], state, [], AS_OF) if a.kind == "stale"] == []
    real = StoreInfo("s1", "Acme", "USD", frozenset({"meta"}))
    assert compute_alerts([real], [META], [], [], [], AS_OF) == []
    # with data stored earlier (credentials removed since), an old fetch is stale again
    state = [FetchState("meta", "111", dt.datetime(2026, 3, 1, tzinfo=UTC))]
    assert [a.kind for a in compute_alerts([real], [META], [], state, [], AS_OF)] == ["stale"]


# --- failed --------------------------------------------------------------------------------------


def test_failed_one_alert_per_account_from_the_first_failed_day():
    state = [
        FetchState(
            "meta",
            "111",
            dt.datetime(2026, 3, 18, tzinfo=UTC),
            (
                (dt.date(2026, 3, 16), "HTTP 503 from graph.facebook.com"),
                (dt.date(2026, 3, 17), "HTTP 503 from graph.facebook.com"),
                (dt.date(2026, 1, 31), "too old: before the previous month"),
                (dt.date(2026, 3, 19), "after the as-of day"),
            ),
        )
    ]
    (a,) = compute_alerts([STORE], [META], [], state, [], AS_OF)
    assert a.to_json() == {
        "store_id": "s1",
        "platform": "meta",
        "account_id": "111",
        "kind": "failed",
        "day": "2026-03-16",
        "detail": "The latest fetch of 2 day(s) of Meta account 111 failed (2026-03-16 to "
        "2026-03-17): HTTP 503 from graph.facebook.com.",
    }
    assert a.key == "2026-03-16"
    assert a.link() == "?store=s1&start=2026-03-16&end=2026-03-16"


def test_all_kinds_sorted_and_only_for_known_stores():
    amounts = {**{day(2 + i): "100" for i in range(14)}, day(1): "0", AS_OF: "0"}
    spike_link = Link("s1", "tiktok", "7", "USD")
    spikes = {**history("100"), AS_OF: "400"}
    rows = rows_for(META, amounts) + rows_for(spike_link, spikes)
    state = [FetchState("meta", "111", dt.datetime(2026, 3, 10, tzinfo=UTC), ((day(3), "boom"),)), fresh(spike_link)]
    other = Link("s2", "meta", "111", "USD")  # a store not asked for
    kinds = [(a.kind, a.platform) for a in compute_alerts([STORE], [META, spike_link, other], rows, state, [], AS_OF)]
    assert kinds == [("stopped", "meta"), ("spike", "tiktok"), ("stale", "meta"), ("failed", "meta")]
