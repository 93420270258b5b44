"""One fixed colour per platform, used by every chart on every page (and in every period)."""
from __future__ import annotations

from service.facade import PLATFORM_IDS, SPECS

PLATFORM_COLORS = {
    "meta": "#1877F2", "google": "#34A853", "tiktok": "#111111", "linkedin": "#0A66C2",
    "amazon": "#FF9900", "microsoft": "#7FBA00", "snapchat": "#E6C800", "pinterest": "#E60023",
    "reddit": "#FF4500"}
OTHER_COLOR = "#9AA0A6"
PLAN_COLOR = "#BDC1C6"          # the plan's bars on the revenue page (observed bars use the platform colour)


def platform_color(pid: str) -> str:
    return PLATFORM_COLORS.get(pid, OTHER_COLOR)


def color_by_name() -> dict[str, str]:
    """Platform display name -> colour (for charts keyed by name)."""
    return {SPECS[p].name: PLATFORM_COLORS[p] for p in PLATFORM_IDS}
