"""Hostile input: every parser, every CSV import, every SQL statement.

- Property-based (hypothesis, fixed seed via the derandomize profile below): any JSON body given
  to any platform parser yields well-formed rows (date -> Decimal, never a float) or a clear
  ``FetchError``; never another exception.
- Damage to a real answer (captured from the sandbox speaking each platform's protocol): every
  key deleted and every value replaced by null, a float, an empty string or an object, one at a
  time. The parser must refuse (``FetchError``) or return exactly what the undamaged answer gave:
  a damaged row is never read as zero, never dropped silently. (Google's REST JSON omits zero
  metrics by design, and Pinterest leaves out a column with no value, so a missing ``costMicros``
  or ``SPEND_IN_MICRO_DOLLAR`` there is that day's documented zero.)
- Microsoft's report CSV: arbitrary text, and every cell of a real report damaged.
- The mapping CSV import: odd encodings, BOMs, blank lines, duplicate rows, formula-like names,
  oversized fields, arbitrary bytes: imported as meant, or refused with one clear message.
- A scan of the code base: no SQL statement built from values by f-string, % or .format().
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import re
import urllib.parse
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fetchers.base import FetchError

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=6)
NY = "America/New_York"

settings.register_profile(
    "hostile", derandomize=True, max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
HOSTILE = settings.get_profile("hostile")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["2026-01-02", "12.34", "1500000", "-1", "1e5", "NaN", "DAY", ""]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "data",
                    "results",
                    "metrics",
                    "spend",
                    "date",
                    "date_start",
                    "costMicros",
                    "list",
                    "stats",
                    "timeseries_stats",
                    "elements",
                    "paging",
                    "page_info",
                    "DATE",
                    "cost",
                    "SPEND_IN_MICRO_DOLLAR",
                    "pagination",
                    "segments",
                    "fieldMask",
                    "code",
                    "timeseries",
                    "start_time",
                    "spend_micro",
                    "dateRange",
                    "costInLocalCurrency",
                    "x",
                ]
            )
            | st.text(max_size=6),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


def _parsers():
    """Every JSON parser of the HTTP platforms, each as body -> result (or FetchError)."""
    from fetchers import amazon, google, linkedin, meta, pinterest, reddit, snapchat, tiktok

    zone = ZoneInfo(NY)
    return {
        "meta.insights": lambda b: meta.parse_insights_page(b, "USD"),
        "meta.account": lambda b: meta.parse_account(b, "1000000001"),
        "google.daily_cost": google.parse_daily_cost,
        "google.customer": lambda b: google.parse_customer(b, "1234567001"),
        "tiktok.report": lambda b: tiktok.parse_report_page(b, "7100000000000001"),
        "tiktok.advertiser": lambda b: tiktok.parse_advertiser_info(b, "7100000000000001"),
        "linkedin.analytics": lambda b: linkedin.parse_analytics(b, "urn:li:sponsoredAccount:500001"),
        "linkedin.account": lambda b: linkedin.parse_ad_account(b, "urn:li:sponsoredAccount:500001"),
        "amazon.report_rows": lambda b: amazon.parse_report_rows(b, "USD"),
        "amazon.report_status": amazon.parse_report_status,
        "amazon.profile": lambda b: amazon.parse_profile(b, "3000000001"),
        "snapchat.stats": lambda b: snapchat.parse_stats(b, zone, "8f2a6c1e-0000-4000-8000-000000000001"),
        "snapchat.account": lambda b: snapchat.parse_account(b, "8f2a6c1e-0000-4000-8000-000000000001"),
        "pinterest.analytics": lambda b: pinterest.parse_analytics(b, "549000000001"),
        "pinterest.report_file": pinterest.parse_report_file,
        "pinterest.report_status": lambda b: pinterest.parse_report_status(b, "549000000001"),
        "pinterest.account": lambda b: pinterest.parse_account(b, "549000000001"),
        "reddit.report": lambda b: reddit.parse_report_page(b, START, END, "a2_acme0001"),
        "reddit.account": lambda b: reddit.parse_account(b, "a2_acme0001"),
    }


PARSERS = _parsers()


def _check_wellformed(result) -> None:
    """Whatever a parser returns holds only exact money: Decimals (or None where the platform
    marks an empty metric), dates as dates, no floats anywhere."""

    def walk(x):
        assert not isinstance(x, float), x
        if isinstance(x, Decimal):
            assert x.is_finite(), x
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(k)
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk(result)
    rows = result[0] if isinstance(result, tuple) else result
    if isinstance(rows, dict) and rows and all(isinstance(k, dt.date) for k in rows):
        assert all(isinstance(v, Decimal) for v in rows.values())


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_any_json_body_gives_rows_or_a_clear_error(name):
    parse = PARSERS[name]

    @HOSTILE
    @given(json_values)
    def prop(body):
        try:
            result = parse(body)
        except FetchError as exc:
            assert exc.message and exc.kind in (
                "malformed",
                "request",
                "report_failed",
                "server",
                "throttled",
                "auth",
                "config",
                "timeout",
            )
            return
        _check_wellformed(result)

    prop()


# --- damaged real answers ----------------------------------------------------------------------


def _sandbox_transport(sb, log: list):
    from sandbox.common import Request

    def handler(request: httpx.Request) -> httpx.Response:
        url = request.url
        query = url.query.decode()
        req = Request(
            request.method,
            url.path,
            urllib.parse.parse_qs(query, keep_blank_values=True),
            {k.lower(): v for k, v in request.headers.items()},
            request.content,
            raw_query=query,
        )
        resp = sb.handle(req)
        log.append((url.path, resp))
        return httpx.Response(resp.status, content=resp.body, headers=resp.headers)

    return httpx.MockTransport(handler)


def _capture(platform: str, account_id: str):
    """The answers the sandbox gives a real fetch of one account (requests and bodies)."""
    from fetchers import get_fetcher
    from fetchers.core import PlatformApi, RateBudget, ReportPolicy
    from sandbox.credentials import FAKE_CREDENTIALS
    from sandbox.server import Sandbox

    sb = Sandbox()
    sb.ctx.configure({"report_polls_needed": 1})
    log: list = []
    fetcher = get_fetcher(platform)
    mod = sb.emulators[platform]
    base = "http://sandbox.test"

    async def run():
        async with httpx.AsyncClient(transport=_sandbox_transport(sb, log)) as client:
            auth = fetcher.build_auth(dict(FAKE_CREDENTIALS[platform]), base + getattr(mod, "TOKEN_PATH", ""), None)
            api = PlatformApi(
                fetcher,
                client,
                base_url=base,
                credentials=dict(FAKE_CREDENTIALS[platform]),
                auth=auth,
                budget=RateBudget(100000),
                report=ReportPolicy(first_poll=0.001),
            )
            info = await fetcher.account_info(api, account_id)
            rows = await fetcher.fetch_daily(api, info, START, END)
            return info, rows

    info, rows = asyncio.run(run())
    return log, info, rows


def _paths(node, prefix=()):
    """Every dict key and every leaf of a JSON tree, as paths."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _damaged(body, path, action):
    out = copy.deepcopy(body)
    parent = out
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if action == "delete":
        if not isinstance(parent, dict):
            return None
        del parent[last]
    else:
        if isinstance(parent[last], (dict, list)) and action != "null":
            return None
        parent[last] = {"null": None, "float": 12.5, "empty": "", "object": {"x": 1}}[action]
    return out


CAPTURES = {
    # platform: (account, path pattern of the spend answer, parser name, how the body is read)
    "meta": ("1000000001", r"/insights$", "meta.insights", "json"),
    "google": ("1234567001", r"searchStream$", "google.daily_cost", "json"),
    "tiktok": ("7100000000000001", r"/report/integrated/get/$", "tiktok.report", "json"),
    "linkedin": ("urn:li:sponsoredAccount:500001", r"/rest/adAnalytics$", "linkedin.analytics", "json"),
    "snapchat": ("8f2a6c1e-0000-4000-8000-000000000001", r"/stats$", "snapchat.stats", "json"),
    "pinterest": ("549000000001", r"/analytics$", "pinterest.analytics", "json"),
    "reddit": ("a2_acme0001", r"/reports$", "reddit.report", "json"),
    "amazon": ("3000000001", r"\.json(\.gz)?$|/download/", "amazon.report_rows", "amazon"),
}


def _rows_of(result):
    if isinstance(result, tuple):
        result = result[0]
    if isinstance(result, list):
        return sorted((d, v) for d, v in result)
    return dict(result)


@pytest.mark.parametrize("platform", sorted(CAPTURES))
def test_every_damage_to_a_real_answer_is_refused_or_harmless(platform):
    account, pattern, parser_name, kind = CAPTURES[platform]
    log, info, rows = _capture(platform, account)
    assert rows and any(v != 0 for v in rows.values())
    answers = [resp for path, resp in log if re.search(pattern, path) and resp.status == 200]
    assert answers, [p for p, _ in log]
    parse = PARSERS[parser_name]
    checked = 0
    for resp in answers:
        if kind == "amazon":
            from fetchers.amazon import decode_report_file

            body = decode_report_file(httpx.Response(200, content=resp.body, headers=resp.headers))
        else:
            body = json.loads(resp.body)
        try:
            original = _rows_of(parse(body))
        except FetchError:
            continue  # another answer on the same path (Google's customer query)
        for path in list(_paths(body)):
            for action in ("delete", "null", "float", "empty", "object"):
                damaged = _damaged(body, path, action)
                if damaged is None:
                    continue
                try:
                    got = _rows_of(parse(damaged))
                except FetchError:
                    continue
                if got == original:
                    continue
                if platform == "google" and action == "delete" and path[-1] == "results":
                    assert got == {}  # a batch without results is Google's answer for no rows
                    continue
                if (platform, action) in (("google", "delete"), ("pinterest", "delete")) and path[-1] in (
                    "costMicros",
                    "metrics",
                    "SPEND_IN_MICRO_DOLLAR",
                ):
                    # documented omissions: Google's proto3 JSON leaves zero fields out, Pinterest
                    # "columns with no value may be left out of a row": absent = that day's zero
                    day = {k: v for k, v in original.items() if got.get(k) != v}
                    assert len(day) == 1 and all(got[d] == 0 for d in day), (path, action)
                    continue
                pytest.fail(f"{platform}: {action} at {path} changed the figures without an error: {original} -> {got}")
            checked += 1
    assert checked >= 5


def test_microsoft_report_csv_every_damaged_cell():
    from fetchers.microsoft import parse_report_csv

    good_days = [START + dt.timedelta(days=i) for i in range(3)]
    header = '"Report Name: Ad Spend Hub daily spend"\n"Report Time: 1/2/2026"\n"Rows: 3"\n\n'
    lines = ['"TimePeriod","AccountId","CurrencyCode","Spend"'] + [
        f'"{d.isoformat()}","41000001","USD","{10 + i}.25"' for i, d in enumerate(good_days)
    ]
    text = header + "\n".join(lines) + '\n\n"©2026 Microsoft Corporation. All rights reserved. "\n'
    original = parse_report_csv(text, "41000001", "USD")
    assert original == {d: Decimal(f"{10 + i}.25") for i, d in enumerate(good_days)}
    for i, _d in enumerate(good_days):
        for col, bad in ((0, ""), (0, "yesterday"), (3, ""), (3, "12,5x"), (3, "1e3"), (3, "NaN"), (1, "999")):
            cells = lines[i + 1].split(",")
            cells[col] = f'"{bad}"'
            damaged = text.replace(lines[i + 1], ",".join(cells))
            try:
                got = parse_report_csv(damaged, "41000001", "USD")
            except FetchError:
                continue
            assert got == original, (col, bad, got)


def test_microsoft_report_csv_any_text_gives_rows_or_a_clear_error():
    from fetchers.microsoft import parse_report_csv

    @HOSTILE
    @given(st.text(max_size=400))
    def prop(text):
        try:
            result = parse_report_csv(text, "41000001", "USD")
        except FetchError:
            return
        _check_wellformed(result)

    prop()


# --- the mapping CSV import ------------------------------------------------------------------------

HEADER = "store_id,store_name,platform,account_id\n"


def _import(data: bytes):
    from service.accounts import parse_import

    return parse_import(data)


def test_import_handles_boms_blank_lines_and_duplicates():
    body = "s1,Acme,meta,act_1000000001\r\n\r\n   \r\ns1,Acme,meta,act_1000000001\r\ns1,Acme,google,123-456-7001\r\n"
    rows = _import(("\ufeff" + HEADER + body).encode("utf-8"))
    assert [(r["platform"], r["account_id"]) for r in rows] == [
        ("meta", "1000000001"),
        ("meta", "1000000001"),
        ("google", "1234567001"),
    ]
    utf16 = (HEADER + body).encode("utf-16")  # Excel's "Unicode text": a BOM and two bytes a character
    from service.accounts import ImportError_

    with pytest.raises(ImportError_) as exc:
        _import(utf16)
    assert "UTF-8" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ImportError_) as exc:
        _import((HEADER + "s1,Caf\xe9 Paris,meta,1000000001\n").encode("latin-1"))
    assert "not UTF-8" in str(exc.value)


def test_import_refuses_oversized_fields_and_control_characters_naming_each_line():
    from service.accounts import ImportError_

    body = f"s1,{'A' * 5000},meta,1000000001\ns2,Tab\tName,meta,1000000002\ns3,Fine,meta,1000000003\n"
    with pytest.raises(ImportError_) as exc:
        _import((HEADER + body).encode())
    msg = str(exc.value)
    assert msg.startswith("nothing imported: 2 bad line(s)")
    assert "line 2:" in msg and "line 3:" in msg and "line 4" not in msg
    assert "A" * 300 not in msg  # the oversized value is not echoed back whole


def test_formula_like_names_are_stored_as_text_and_neutralised_on_the_way_out(tmp_path, run_cli):
    import csv as csvmod
    import io

    names = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)"]
    buf = io.StringIO()
    w = csvmod.writer(buf, lineterminator="\n")
    w.writerow(["store_id", "store_name", "platform", "account_id", "display_name"])
    for i, n in enumerate(names):
        w.writerow([f"s{i}", n, "meta", f"100000000{i}", n])
    path = tmp_path / "a.csv"
    path.write_text(buf.getvalue())
    r = run_cli("accounts", "import", path)
    assert r.returncode == 0, r
    listing = run_cli("accounts", "list", "--json").json()
    assert sorted(s["name"] for s in listing["stores"]) == sorted(names)  # stored exactly as given
    from service.accounts import export_mapping_csv
    from storage.db import SpendStore

    out = list(csvmod.reader(io.StringIO(export_mapping_csv(SpendStore(tmp_path / "adspend.duckdb")).decode())))
    assert len(out) == 1 + len(names)
    for row in out[1:]:
        for cell in (row[1], row[5]):
            assert not cell.startswith(("=", "+", "-", "@")), row
            assert cell.lstrip("'") in names, row  # neutralised, not altered otherwise


@HOSTILE
@given(
    st.binary(max_size=300)
    | st.text(max_size=300).map(lambda t: (HEADER + t).encode("utf-8", "surrogatepass") if "\ud800" not in t else b"")
)
def test_import_of_arbitrary_bytes_imports_or_refuses_in_one_sentence(data):
    from service.accounts import ImportError_

    try:
        rows = _import(data)
    except ImportError_ as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    for r in rows:
        assert set(r) == {"store_id", "store_name", "billing_currency", "platform", "account_id", "display_name"}
        assert re.fullmatch(r"[A-Z]{3}", r["billing_currency"])


# --- every SQL statement parameterised ----------------------------------------------------------------

SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|VALUES|SET|FROM)\b")
# What may be spliced into DuckDB SQL text: identifiers and fragments chosen by code, never values.
SAFE_NAMES = {"tbl", "table", "cols", "keys", "need", "columns", "store_filter", "where", "placeholders"}
# .format() fragments built by code from constants (service/report.py: one sum column per integer limb)
SAFE_FORMAT_KWARGS = {"store_filter", "limb_sums"}


def _safe_interpolation(expr: str) -> bool:
    expr = expr.strip()
    if expr in SAFE_NAMES or re.fullmatch(r"_?[A-Z][A-Z0-9_]*", expr):
        return True
    m = re.fullmatch(r"""(["'])\s*,\s*\1\.join\((\w+)\)""", expr)
    return bool(m) and (m.group(2) in SAFE_NAMES or re.fullmatch(r"_?[A-Z][A-Z0-9_]*", m.group(2)) is not None)


def _sql_sources():
    """Every module that talks to DuckDB (fetchers speak the platforms' query languages, the
    sandbox only echoes them in error messages)."""
    for folder in ("storage", "service", "ui", "pages"):
        yield from sorted((ROOT / folder).rglob("*.py"))
    yield ROOT / "app.py"
    yield ROOT / "cli.py"


def test_no_sql_statement_is_built_from_values():
    """f-strings, % and .format() in SQL may only splice in identifiers chosen by code (column
    lists and table names from constants); every value goes through a ``?`` / ``$name`` parameter."""
    problems = []
    fstring = re.compile(r"""\bf(["'])((?:(?!\1).)*)\1""")
    for path in _sql_sources():
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for m in fstring.finditer(line):
                literal = m.group(2)
                if not SQL_WORDS.search(literal) or not re.search(
                    r"\b(SELECT|INSERT|UPDATE|DELETE)\b|\bFROM\b \w", literal
                ):
                    continue
                bad = [e for e in re.findall(r"\{([^{}]+)\}", literal) if not _safe_interpolation(e)]
                if bad:
                    problems.append(f"{path.relative_to(ROOT)}:{n}: {bad} in {literal[:90]!r}")
            if re.search(r"""(["'])(?:(?!\1).)*\b(SELECT|INSERT|UPDATE|DELETE)\b(?:(?!\1).)*\1\s*%\s*[\w(]""", line):
                problems.append(f"{path.relative_to(ROOT)}:{n}: %-formatted SQL: {line.strip()[:90]}")
            for m in re.finditer(r"(\w*SQL\w*|[\"'])\.format\(([^)]*)\)", line):
                if m.group(1) in ('"', "'") and not SQL_WORDS.search(line):
                    continue
                kwargs = re.findall(r"(\w+)\s*=\s*([^,]+)", m.group(2))
                if not kwargs or any(k not in SAFE_FORMAT_KWARGS and not _safe_interpolation(v) for k, v in kwargs):
                    problems.append(f"{path.relative_to(ROOT)}:{n}: .format() SQL: {line.strip()[:90]}")
    assert not problems, "SQL built from values:\n" + "\n".join(problems)


def test_the_sql_scan_catches_a_value_spliced_in(tmp_path):
    """The scan above can fail: a statement with a value in an f-string is reported."""
    bad = tmp_path / "storage"
    bad.mkdir()
    (bad / "bad.py").write_text(
        "con.execute(f\"SELECT * FROM stores WHERE store_id = '{store_id}'\")\n"
        "con.execute(\"DELETE FROM stores WHERE name = '%s'\" % name)\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        (tmp_path / "app.py").write_text("")
        (tmp_path / "cli.py").write_text("")
        with pytest.raises(AssertionError) as exc:
            test_no_sql_statement_is_built_from_values()
    finally:
        ROOT = saved
    assert "bad.py:1" in str(exc.value) and "bad.py:2" in str(exc.value)


def test_sql_injection_through_inputs_is_inert(tmp_path, run_cli):
    """Store ids, names and account names that look like SQL are only ever data."""
    evil = "x'); DROP TABLE daily_spend; --"
    csv = tmp_path / "a.csv"
    csv.write_text(HEADER.replace("\n", ",display_name\n") + f's1,"{evil}",meta,1000000001,"{evil}"\n')
    assert run_cli("accounts", "import", csv).returncode == 0
    r = run_cli("spend", "--store", "s1' OR '1'='1", "--start", START.isoformat(), "--end", END.isoformat(), "--json")
    assert r.returncode == 2 and "unknown store" in r.stderr
    doc = run_cli("spend", "--store", "s1", "--start", START.isoformat(), "--end", END.isoformat(), "--json").json()
    assert doc["store_name"] == evil
    from storage.db import SpendStore

    assert SpendStore(tmp_path / "adspend.duckdb").query("SELECT count(*) FROM daily_spend") == [(0,)]
