"""One fixed colour per platform, used by every chart on every page (and in every period)."""

from __future__ import annotations

from service.facade import PLATFORM_IDS, SPECS

PLATFORM_COLORS = {p: SPECS[p].color for p in PLATFORM_IDS}  # the registry's PlatformSpec.color
OTHER_COLOR = "#9AA0A6"
PLAN_COLOR = "#BDC1C6"  # the plan's bars on the revenue page (observed bars use the platform colour)


def platform_color(pid: str) -> str:
    return PLATFORM_COLORS.get(pid, OTHER_COLOR)


def color_by_name() -> dict[str, str]:
    """Platform display name -> colour (for charts keyed by name)."""
    return {SPECS[p].name: PLATFORM_COLORS[p] for p in PLATFORM_IDS}
