"""Shared Streamlit helpers: bootstrap (page config, access gate, cached store, demo banner,
navigation), the sidebar pickers, error guard and formatting. Every page calls
``ui.bootstrap(title)`` first."""

from . import charts  # noqa: F401,E402
from .bootstrap import bootstrap, get_store, guard, settings_described, vault_warning  # noqa: F401
from .format import badge_markdown, escape_md, money, number_format  # noqa: F401
from .progress import run_with_progress  # noqa: F401
from .sidebar import Selection, sidebar_pickers  # noqa: F401
from .state import page_state  # noqa: F401
from .store_view import account_table, breakdown_table, portfolio_charts, spend_charts, spend_metric  # noqa: F401
from .tables import money_table  # noqa: F401,E402
