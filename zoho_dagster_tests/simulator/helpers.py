"""Small HTTP helpers for the conformance tests: every call goes over a real socket."""

from __future__ import annotations

from typing import Any

import requests

SESSION = requests.Session()


def grant(org: dict[str, Any], **extra: str) -> requests.Response:
    """POST the token endpoint with a refresh_token grant (form body) unless `extra` overrides it."""
    data = {
        "grant_type": "refresh_token",
        "client_id": org["client_id"],
        "client_secret": org["client_secret"],
        "refresh_token": org["refresh_token"],
        **extra,
    }
    return SESSION.post(f"{org['accounts_url']}/oauth/v2/token", data=data, timeout=30)


def token(org: dict[str, Any]) -> str:
    resp = grant(org)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def get(
    org: dict[str, Any],
    path: str,
    tok: str | None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    hdrs = dict(headers or {})
    if tok is not None:
        hdrs["Authorization"] = f"Zoho-oauthtoken {tok}"
    return SESSION.get(f"{org['api_domain']}{path}", params=params, headers=hdrs, timeout=60)


def error(resp: requests.Response) -> dict[str, Any]:
    """The standard error body; asserts the four keys of docs/zoho-crm-api.md §6.5 are present."""
    body = resp.json()
    assert set(body) == {"code", "details", "message", "status"}, body
    assert body["status"] == "error"
    return dict(body)


def client_org(sim: Any, scopes: list[str], admin: bool = True) -> dict[str, Any]:
    """A primary-org dict whose credentials belong to a new client with `scopes`."""
    creds = sim.control.add_client(scopes, admin=admin)
    return {**sim.primary, **creds}


RECORD_MODULES = (
    "Leads",
    "Contacts",
    "Accounts",
    "Deals",
    "Tasks",
    "Events",
    "Calls",
    "Campaigns",
    "Products",
    "Quotes",
    "Vendors",
    "Notes",
    "Vehicles",
)
"""The record modules the simulator must serve: the twelve of docs/zoho-crm-api.md §3.1 and the custom one."""

EVERY_RECORD = {"converted": "both", "approved": "both"}
"""Get Records parameters lifting both default filters: converted and awaiting-approval records too
(docs/zoho-crm-api.md §2.1)."""


def shown_by_default(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of ``truth`` that Get Records shows without ``converted``/``approved``: not converted, not
    awaiting approval (read from each row's own ``$`` keys)."""
    return [r for r in rows if r.get("$approved", True) is True and r.get("$converted", False) is False]


INVALID_TOKEN = {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}
"""The 401 body for an expired or unknown access token (docs/zoho-crm-api.md §1.7)."""
