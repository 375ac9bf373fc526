"""Roles, profiles and currencies of the org (docs/zoho-crm-api.md §3.10)."""

from __future__ import annotations

from typing import Any

from .context import Request
from .currency import CURRENCIES
from .datagen import DAY
from .errors import ApiError
from .state import Org

__all__ = ["CURRENCIES", "currency_rows", "profile_rows", "role_rows"]


def role_rows(org: Org) -> list[dict[str, Any]]:
    """Two roles: CEO (the admins') at the top and Manager (everyone else's) reporting to it; their ids are
    the ones the users API gives in each user's `role`."""
    admin = org.users[0]
    ceo_id, manager_id = str(int(admin.id) + 7), str(int(admin.id) + 13)
    base = {"forecast_manager": None, "share_with_peers": True, "created_by__s": None, "modified_by__s": None}
    return [
        {
            **base,
            "id": ceo_id,
            "name": "CEO",
            "display_label": "CEO",
            "reporting_to": None,
            "admin_user": True,
            "description": "The top of the role hierarchy.",
        },
        {
            **base,
            "id": manager_id,
            "name": "Manager",
            "display_label": "Manager",
            "reporting_to": {"name": "CEO", "id": ceo_id},
            "admin_user": False,
            "description": "Users who report to the CEO.",
        },
    ]


def profile_rows(org: Org, render: Any) -> list[dict[str, Any]]:
    """Administrator and Standard (Zoho's two built-in profiles: no creation time, `custom` false) and one
    custom profile; the first two ids are the ones the users API gives in each user's `profile`."""
    admin = org.users[0]
    by = {"name": admin.full_name, "id": admin.id}
    created = render(org.store.gen.now0 - 200 * DAY)
    built_in = {"created_time": None, "modified_time": None, "created_by": None, "modified_by": None}
    return [
        {
            **built_in,
            "id": str(int(admin.id) + 9),
            "name": "Administrator",
            "display_label": "Administrator",
            "default": False,
            "custom": False,
            "description": "This profile will have all the permissions.",
            "category": False,
        },
        {
            **built_in,
            "id": str(int(admin.id) + 11),
            "name": "Standard",
            "display_label": "Standard",
            "default": True,
            "custom": False,
            "description": "This profile will have all the permissions except administrative privileges.",
            "category": False,
        },
        {
            "id": str(int(admin.id) + 15),
            "name": "Sales Rep",
            "display_label": "Sales Rep",
            "default": False,
            "custom": True,
            "description": "Custom profile for the field sales team.",
            "category": False,
            "created_time": created,
            "modified_time": created,
            "created_by": by,
            "modified_by": by,
        },
    ]


def currency_rows(org: Org, render: Any) -> list[dict[str, Any]]:
    admin = org.users[0]
    by = {"name": admin.full_name, "id": admin.id}
    prefix = int(org.store.gen.prefix)
    rows = []
    for k, (name, iso, symbol, rate, active) in enumerate(CURRENCIES):
        when = render(org.store.gen.now0 - (300 - k) * DAY)
        rows.append(
            {
                "id": str(prefix * 10**12 + 96 * 10**10 + 1001 + k * 4),
                "name": name,
                "iso_code": iso,
                "symbol": symbol,
                "exchange_rate": rate,
                "is_base": k == 0,
                "is_active": active,
                "prefix_symbol": True,
                "format": {
                    "decimal_separator": "Period",
                    "thousand_separator": "Comma",
                    "decimal_places": "2",
                },
                "created_time": when,
                "created_by": by,
                "modified_time": when,
                "modified_by": by,
            }
        )
    return rows


def roles(req: Request) -> tuple[int, Any]:
    req.require(
        "ZohoCRM.settings.ALL",
        "ZohoCRM.settings.READ",
        "ZohoCRM.settings.roles.READ",
        "ZohoCRM.settings.roles.ALL",
    )
    return 200, {"roles": role_rows(req.org)}


def profiles(req: Request) -> tuple[int, Any]:
    req.require(
        "ZohoCRM.settings.ALL",
        "ZohoCRM.settings.READ",
        "ZohoCRM.settings.profiles.READ",
        "ZohoCRM.settings.profiles.ALL",
    )
    return 200, {"profiles": profile_rows(req.org, req.render_now)}


def currencies(req: Request) -> tuple[int, Any]:
    """`GET /crm/v6/org/currencies`; with multi-currency off, strictest plausible: 400 FEATURE_NOT_ENABLED
    (UNCONFIRMED, docs/zoho-crm-api.md §3.10)."""
    req.require(
        "ZohoCRM.settings.ALL",
        "ZohoCRM.settings.READ",
        "ZohoCRM.settings.currencies.READ",
        "ZohoCRM.settings.currencies.ALL",
    )
    if not req.org.mc_status:
        raise ApiError(400, "FEATURE_NOT_ENABLED", "Multi-currency is not enabled for this organization", {})
    return 200, {"currencies": currency_rows(req.org, req.render_now)}
