"""The platform registry: one entry per platform, everything the rest of the product needs to
know about it without importing its module (ids and names fixed by the interface spec).

An entry holds the id, name and tier, the environment variable names of each credential group,
default hosts and rate budget, the account id form users see, its default share of a client's ad
spend, its chart colour and its demo-store accounts. Its data limits (``lookback_days``,
``day_basis``, ``history_days``) are here too, so a report reads them without importing the
fetcher (and httpx); wire details (API versions, paths, parsing, ``max_days``) live in its fetcher
module, ``fetchers/<id>.py``. Adding a platform: README "Adding a platform".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class PlatformSpec:
    id: str
    name: str
    tier: int  # 0 = billed today (Meta, Google); 1..3 as in the expansion plan
    env_prefix: str  # <P> in <P>_API_BASE_URL / <P>_TOKEN_URL / <P>_REQUESTS_PER_MINUTE
    required: tuple[str, ...]  # credential variables that must all be set
    optional: tuple[str, ...]  # credential variables that may be set
    secret_keys: tuple[str, ...]  # which of the above are secret (never shown, never logged)
    default_base_url: str
    default_token_url: str  # "" where the platform has no refresh grant we use
    default_rpm: int  # requests a minute, shared by every account and store in a run
    rpm_source: str  # where the default comes from
    id_form: str  # the account id form, as the Accounts page and its errors say it
    default_share: Decimal  # % of a typical client's digital ad spend (the coverage page's default)
    color: str  # its colour in every chart
    demo_accounts: tuple[tuple[str, str, str], ...]  # (demo store id, account id, display name)
    # the platform's data limits, read by the fetcher and by every report without importing it
    lookback_days: int  # how many days after a day the platform may still restate it
    day_basis: str  # "account" (the account's timezone) or "UTC"
    history_days: int | None  # how far back the platform serves data (None: no documented cap)
    # hosts chosen by a credential (Amazon's region): the variable, and per value (upper case) the
    # (API base URL, token URL); the first entry is the default
    region_var: str = ""
    regions: tuple[tuple[str, str, str], ...] = ()
    refresh_token_key: str = ""  # the variable holding a refresh token, if any
    rotates_refresh_token: bool = False
    credential_lifetime_days: int | None = None  # how long the long-lived credential lasts
    # the spend answer carries the account's currency and time zone: its fetcher implements
    # ``fetch_daily_and_info`` (fetchers/base.py) and a first refresh needs no separate lookup
    info_in_data: bool = False
    # the spend request needs nothing of the account lookup but the id: the lookup (needed only
    # to store the answer) runs beside the account's first window, in the budget's gaps
    data_without_info: bool = False
    # its first call waits on something slow to start (Microsoft: the SDK's worker process, its
    # import and WSDL parses): its fetcher implements ``warm_up`` (fetchers/base.py), which the
    # refresh calls as soon as it knows the platform has days to fetch
    warm_up: bool = False

    @property
    def rpm_var(self) -> str:
        return f"{self.env_prefix}_REQUESTS_PER_MINUTE"

    @property
    def base_url_var(self) -> str:
        return f"{self.env_prefix}_API_BASE_URL"

    @property
    def token_url_var(self) -> str:
        return f"{self.env_prefix}_TOKEN_URL"

    @property
    def all_keys(self) -> tuple[str, ...]:
        return self.required + self.optional

    def region_urls(self, region: str | None) -> tuple[str, str] | None:
        """The (API base URL, token URL) of a region value (empty: the first region); None for a
        value the platform does not have."""
        key = (region or "").strip().upper() or (self.regions[0][0] if self.regions else "")
        return next(((base, token) for r, base, token in self.regions if r == key), None)

    def default_urls(self, credentials: Mapping[str, str]) -> tuple[str, str]:
        """(API base URL, token URL) by default: the credentials' region's, where the platform has
        regions (an unknown region gets the default here; the fetcher refuses it), else the fixed ones."""
        if self.region_var:
            return self.region_urls(credentials.get(self.region_var)) or (self.default_base_url, self.default_token_url)
        return self.default_base_url, self.default_token_url


SPECS: dict[str, PlatformSpec] = {
    s.id: s
    for s in [
        PlatformSpec(
            "meta",
            "Meta",
            0,
            "META",
            required=("META_ACCESS_TOKEN",),
            optional=("META_APP_SECRET",),
            secret_keys=("META_ACCESS_TOKEN", "META_APP_SECRET"),
            default_base_url="https://graph.facebook.com",
            default_token_url="",
            default_rpm=200,
            rpm_source="conservative: Meta's insights budget is per-app and per-account points (BUC), not a fixed rate",
            credential_lifetime_days=60,
            # spend settles within 28 days (§1.8, Airbyte's default lookback)
            lookback_days=28,
            # insights days are the ad account's timezone, no override (§1.2, §1.8)
            day_basis="account",
            # insights older than 37 months are refused; Airbyte clamps to 1123 days (§1.2)
            history_days=1123,
            # the account node answers its currency and time zone with its insights edge expanded
            # (Graph field expansion, §1.7): a first fetch is one request
            info_in_data=True,
            id_form="digits, e.g. 1234567890 or act_1234567890 (stored without act_)",
            default_share=Decimal(30),
            color="#1877F2",
            demo_accounts=(
                ("demo-acme", "1000000001", "Acme Meta"),
                ("demo-fjord", "1000000978", "Fjord Meta (EUR)"),
                ("demo-fjord", "1000000826", "Fjord Meta UK (GBP)"),
                ("demo-sakura", "1000000392", "Sakura Meta (JPY)"),
            ),
        ),
        PlatformSpec(
            "google",
            "Google Ads",
            0,
            "GOOGLE_ADS",
            required=(
                "GOOGLE_ADS_DEVELOPER_TOKEN",
                "GOOGLE_ADS_CLIENT_ID",
                "GOOGLE_ADS_CLIENT_SECRET",
                "GOOGLE_ADS_REFRESH_TOKEN",
            ),
            optional=("GOOGLE_ADS_LOGIN_CUSTOMER_ID",),
            secret_keys=("GOOGLE_ADS_DEVELOPER_TOKEN", "GOOGLE_ADS_CLIENT_SECRET", "GOOGLE_ADS_REFRESH_TOKEN"),
            default_base_url="https://googleads.googleapis.com",
            default_token_url="https://oauth2.googleapis.com/token",
            default_rpm=600,
            rpm_source="conservative: Google Ads limits operations per developer token per day, not per minute",
            refresh_token_key="GOOGLE_ADS_REFRESH_TOKEN",
            lookback_days=14,
            # segments.date is the customer's timezone, no override (§2.2, §2.8)
            day_basis="account",
            # no documented retention limit for customer-level cost (§2.2)
            history_days=None,
            # the spend query selects customer.currency_code and customer.time_zone too (§2.2)
            info_in_data=True,
            id_form="10 digits, e.g. 123-456-7890 or 1234567890 (stored without dashes)",
            default_share=Decimal(35),
            color="#34A853",
            demo_accounts=(
                ("demo-acme", "1234567001", "Acme Google Ads"),
                ("demo-fjord", "1234567978", "Fjord Google Ads (EUR)"),
                ("demo-sakura", "1234567392", "Sakura Google Ads (JPY)"),
            ),
        ),
        PlatformSpec(
            "tiktok",
            "TikTok",
            1,
            "TIKTOK",
            required=("TIKTOK_ACCESS_TOKEN",),
            optional=("TIKTOK_APP_ID", "TIKTOK_APP_SECRET"),
            secret_keys=("TIKTOK_ACCESS_TOKEN", "TIKTOK_APP_SECRET"),
            default_base_url="https://business-api.tiktok.com",
            default_token_url="",
            default_rpm=600,
            rpm_source="documented: Basic tier, 600 requests a minute per app",
            lookback_days=3,
            # stat_time_day is the advertiser's local day (§3.2, §3.3)
            day_basis="account",
            # no documented retention cap for the integrated report
            history_days=None,
            # the integrated report takes only advertiser_id
            data_without_info=True,
            id_form="digits, e.g. 7123456789012345",
            default_share=Decimal(10),
            color="#111111",
            demo_accounts=(
                ("demo-acme", "7100000000000001", "Acme TikTok"),
                ("demo-acme", "7100000000000002", "Acme TikTok EU shop"),
                ("demo-fjord", "7100000000000978", "Fjord TikTok (EUR)"),
            ),
        ),
        PlatformSpec(
            "linkedin",
            "LinkedIn",
            1,
            "LINKEDIN",
            required=("LINKEDIN_ACCESS_TOKEN",),
            optional=("LINKEDIN_CLIENT_ID", "LINKEDIN_CLIENT_SECRET", "LINKEDIN_REFRESH_TOKEN"),
            secret_keys=("LINKEDIN_ACCESS_TOKEN", "LINKEDIN_CLIENT_SECRET", "LINKEDIN_REFRESH_TOKEN"),
            default_base_url="https://api.linkedin.com",
            default_token_url="https://www.linkedin.com/oauth/v2/accessToken",
            default_rpm=100,
            rpm_source="the expansion plan's 100 a minute (LinkedIn publishes none)",
            refresh_token_key="LINKEDIN_REFRESH_TOKEN",
            credential_lifetime_days=365,
            lookback_days=7,
            # LinkedIn reports UTC days (§4.3; official statement UNCONFIRMED)
            day_basis="UTC",
            # retention values not captured (§4.4, UNCONFIRMED)
            history_days=None,
            # adAnalytics takes only the account URN
            data_without_info=True,
            id_form="urn:li:sponsoredAccount:123456 or 123456 (stored as the URN)",
            default_share=Decimal(5),
            color="#0A66C2",
            demo_accounts=(
                ("demo-acme", "urn:li:sponsoredAccount:500978", "Acme LinkedIn (EUR)"),
                ("demo-sakura", "urn:li:sponsoredAccount:500001", "Sakura LinkedIn"),
            ),
        ),
        PlatformSpec(
            "amazon",
            "Amazon Ads",
            2,
            "AMAZON_ADS",
            required=("AMAZON_CLIENT_ID", "AMAZON_CLIENT_SECRET", "AMAZON_REFRESH_TOKEN"),
            optional=("AMAZON_ACCESS_TOKEN", "AMAZON_ADS_REGION"),
            secret_keys=("AMAZON_CLIENT_SECRET", "AMAZON_REFRESH_TOKEN", "AMAZON_ACCESS_TOKEN"),
            default_base_url="https://advertising-api.amazon.com",
            default_token_url="https://api.amazon.com/auth/o2/token",
            default_rpm=60,
            rpm_source="conservative: Amazon throttles reporting dynamically (429 + Retry-After)",
            region_var="AMAZON_ADS_REGION",
            regions=(  # (A.1)
                ("NA", "https://advertising-api.amazon.com", "https://api.amazon.com/auth/o2/token"),
                ("EU", "https://advertising-api-eu.amazon.com", "https://api.amazon.co.uk/auth/o2/token"),
                ("FE", "https://advertising-api-fe.amazon.com", "https://api.amazon.co.jp/auth/o2/token"),
            ),
            refresh_token_key="AMAZON_REFRESH_TOKEN",
            # clicks/cost settle within 3 days of traffic validation (A.9)
            lookback_days=3,
            # report dates are the profile's local days (A.10, D.2 UNCONFIRMED)
            day_basis="account",
            # SP keeps 95 days, SB 60, SD 65 (A.5). A day older than 60 cannot be summed over all three
            # products, so the platform's history is the shortest of the three.
            history_days=60,
            id_form="the advertising profile id, digits",
            default_share=Decimal(10),
            color="#FF9900",
            demo_accounts=(
                ("demo-acme", "3000000001", "Acme Amazon"),
                ("demo-fjord", "3000000826", "Fjord Amazon UK (GBP)"),
            ),
        ),
        PlatformSpec(
            "microsoft",
            "Microsoft Advertising",
            2,
            "MICROSOFT_ADS",
            required=(
                "MICROSOFT_CLIENT_ID",
                "MICROSOFT_DEVELOPER_TOKEN",
                "MICROSOFT_CUSTOMER_ID",
                "MICROSOFT_REFRESH_TOKEN",
            ),
            optional=("MICROSOFT_CLIENT_SECRET", "MICROSOFT_ACCESS_TOKEN"),
            secret_keys=(
                "MICROSOFT_CLIENT_SECRET",
                "MICROSOFT_DEVELOPER_TOKEN",
                "MICROSOFT_REFRESH_TOKEN",
                "MICROSOFT_ACCESS_TOKEN",
            ),
            default_base_url="https://reporting.api.bingads.microsoft.com",
            default_token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",
            default_rpm=120,
            rpm_source="conservative: Microsoft allows bursts, then fault 117 (throttled)",
            refresh_token_key="MICROSOFT_REFRESH_TOKEN",
            rotates_refresh_token=True,
            credential_lifetime_days=90,
            # The restatement window for Microsoft (clicks are invalidated and credited for weeks).
            lookback_days=30,
            # Daily rows are cut in the ReportTimeZone we send, which is the account's own zone (B.8, D.4:
            # disputed in public threads, so we always send it explicitly rather than rely on a default).
            day_basis="account",
            # daily Account Performance data is kept 36 months (B.7)
            history_days=3 * 365,
            id_form="the account id, digits",
            default_share=Decimal(5),
            color="#7FBA00",
            demo_accounts=(("demo-acme", "41000978", "Acme Microsoft (EUR)"),),
            # the SDK's worker process takes about a second to import the SDK and parse its WSDLs
            warm_up=True,
        ),
        PlatformSpec(
            "snapchat",
            "Snapchat",
            3,
            "SNAPCHAT",
            required=("SNAPCHAT_CLIENT_ID", "SNAPCHAT_CLIENT_SECRET", "SNAPCHAT_REFRESH_TOKEN"),
            optional=("SNAPCHAT_ACCESS_TOKEN",),
            secret_keys=("SNAPCHAT_CLIENT_SECRET", "SNAPCHAT_REFRESH_TOKEN", "SNAPCHAT_ACCESS_TOKEN"),
            default_base_url="https://adsapi.snapchat.com",
            default_token_url="https://accounts.snapchat.com/login/oauth2/access_token",
            default_rpm=120,
            rpm_source="conservative: Snapchat publishes no per-minute figure",
            refresh_token_key="SNAPCHAT_REFRESH_TOKEN",
            # Stats lag about 48 h before they are final (§5.8, §0 rule 2): re-pull a week.
            lookback_days=7,
            # DAY buckets are midnight-to-midnight in the ad account's timezone (§5.2)
            day_basis="account",
            # no documented retention cap
            history_days=None,
            id_form="the ad account UUID, e.g. 8f2a6c1e-0000-4000-8000-000000000001",
            default_share=Decimal(2),
            color="#E6C800",
            demo_accounts=(
                ("demo-acme", "8f2a6c1e-0000-4000-8000-000000000001", "Acme Snapchat"),
                ("demo-sakura", "8f2a6c1e-0000-4000-8000-000000000392", "Sakura Snapchat (JPY)"),
            ),
        ),
        PlatformSpec(
            "pinterest",
            "Pinterest",
            3,
            "PINTEREST",
            required=("PINTEREST_APP_ID", "PINTEREST_APP_SECRET", "PINTEREST_REFRESH_TOKEN"),
            optional=("PINTEREST_ACCESS_TOKEN",),
            secret_keys=("PINTEREST_APP_SECRET", "PINTEREST_REFRESH_TOKEN", "PINTEREST_ACCESS_TOKEN"),
            default_base_url="https://api.pinterest.com",
            default_token_url="https://api.pinterest.com/v5/oauth/token",
            default_rpm=300,
            rpm_source="conservative: below Pinterest's analytics category limit",
            refresh_token_key="PINTEREST_REFRESH_TOKEN",
            rotates_refresh_token=True,
            # Pinterest documents no settle time; one 90-day sync request covers 28 days at no extra cost
            lookback_days=28,
            # reporting dates are UTC (section 6.2, 6.7)
            day_basis="UTC",
            # async reports reach 914 days back (section 6.2)
            history_days=914,
            # analytics and async reports take only the ad account id in their path
            data_without_info=True,
            id_form="the ad account id, digits",
            default_share=Decimal(2),
            color="#E60023",
            demo_accounts=(
                ("demo-acme", "549000000001", "Acme Pinterest"),
                ("demo-fjord", "549000000978", "Fjord Pinterest (EUR)"),
            ),
        ),
        PlatformSpec(
            "reddit",
            "Reddit",
            3,
            "REDDIT",
            required=("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_REFRESH_TOKEN"),
            optional=("REDDIT_ACCESS_TOKEN",),
            secret_keys=("REDDIT_CLIENT_SECRET", "REDDIT_REFRESH_TOKEN", "REDDIT_ACCESS_TOKEN"),
            default_base_url="https://ads-api.reddit.com",
            default_token_url="https://www.reddit.com/api/v1/access_token",
            default_rpm=60,
            rpm_source="conservative: Reddit answers 429 past its (unpublished) limit",
            refresh_token_key="REDDIT_REFRESH_TOKEN",
            rotates_refresh_token=True,
            # Report data settles within about 6 hours (§7.3): three days of restatement cover it with margin.
            lookback_days=3,
            # DATE rows follow the time_zone_id we send: the account's own (§7.2, §7.8)
            day_basis="account",
            # only the last 24 months of report data are served (§7.2)
            history_days=730,
            id_form="the ad account id as Reddit shows it, e.g. t2_abc123 or a2_abc123",
            default_share=Decimal(1),
            color="#FF4500",
            demo_accounts=(
                ("demo-acme", "a2_acme0001", "Acme Reddit"),
                ("demo-sakura", "a2_sakura0002", "Sakura Reddit"),
            ),
        ),
    ]
}

PLATFORM_IDS: tuple[str, ...] = tuple(SPECS)


def spec(platform: str) -> PlatformSpec:
    try:
        return SPECS[platform]
    except KeyError:
        raise ValueError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORM_IDS)}") from None
