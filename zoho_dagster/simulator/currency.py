"""The org's currencies: one table that `/org/currencies`, the `Currency` picklist of fields metadata and the
records' `Currency` / `Exchange_Rate` / `$currency_symbol` values all read (docs/zoho-crm-api.md §3.10)."""

from __future__ import annotations

from typing import NamedTuple


class Currency(NamedTuple):
    name: str
    iso_code: str
    symbol: str
    exchange_rate: str  # a string in `/org/currencies` (docs/zoho-crm-api.md §3.10)
    active: bool


CURRENCIES: tuple[Currency, ...] = (
    # The first is the org's home (base) currency, the one `/org` names.
    Currency("US Dollar", "USD", "$", "1.000000000", True),
    Currency("Euro", "EUR", "€", "0.920000000", True),
    Currency("Indian Rupee", "INR", "₹", "83.120000000", True),
    Currency("Japanese Yen", "JPY", "¥", "151.400000000", True),
    Currency("Pound Sterling", "GBP", "£", "0.790000000", False),
)
HOME = CURRENCIES[0]
ACTIVE_CODES: tuple[str, ...] = tuple(c.iso_code for c in CURRENCIES if c.active)
BY_CODE: dict[str, Currency] = {c.iso_code: c for c in CURRENCIES}
FOREIGN_SHARE = 0.2
"""Share of records of a multi-currency module held in an active currency other than the home one."""
