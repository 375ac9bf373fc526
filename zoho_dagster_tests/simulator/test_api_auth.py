"""API authentication and per-endpoint scopes (docs/zoho-crm-api.md §1.7, §1.8)."""

from __future__ import annotations

import pytest

from zoho_dagster.simulator import RunningSimulator

from .helpers import INVALID_TOKEN, client_org, get, token

SCOPE_MISMATCH = {
    "code": "OAUTH_SCOPE_MISMATCH",
    "details": {},
    "message": "invalid oauth scope to access this URL",
    "status": "error",
}


def test_missing_token(sim: RunningSimulator) -> None:
    resp = get(sim.primary, "/crm/v6/Leads", None, {"fields": "Last_Name"})
    assert resp.status_code == 401
    assert resp.json() == {
        "code": "AUTHENTICATION_FAILURE",
        "details": {},
        "message": "Authentication failed",
        "status": "error",
    }


def test_unknown_token(sim: RunningSimulator) -> None:
    resp = get(sim.primary, "/crm/v6/Leads", "1000.unknown", {"fields": "Last_Name"})
    assert resp.status_code == 401
    assert resp.json() == INVALID_TOKEN


CASES = [
    # (granted scopes, path, params, allowed)
    (["ZohoCRM.modules.ALL"], "/crm/v6/Leads", {"fields": "Last_Name"}, True),
    (["ZohoCRM.modules.leads.READ"], "/crm/v6/Leads", {"fields": "Last_Name"}, True),
    (["ZohoCRM.modules.contacts.READ"], "/crm/v6/Leads", {"fields": "Last_Name"}, False),
    (["ZohoCRM.settings.ALL"], "/crm/v6/Leads", {"fields": "Last_Name"}, False),
    (["ZohoCRM.modules.custom.READ"], "/crm/v6/Vehicles", {"fields": "Name"}, True),
    (["ZohoCRM.modules.events.READ"], "/crm/v6/Events", {"fields": "Event_Title"}, True),
    (["ZohoCRM.settings.ALL"], "/crm/v6/settings/modules", {}, True),
    (["ZohoCRM.settings.modules.READ"], "/crm/v6/settings/modules", {}, True),
    (["ZohoCRM.modules.ALL"], "/crm/v6/settings/modules", {}, False),
    (["ZohoCRM.settings.fields.READ"], "/crm/v6/settings/fields", {"module": "Leads"}, True),
    (["ZohoCRM.settings.modules.READ"], "/crm/v6/settings/fields", {"module": "Leads"}, False),
    (["ZohoCRM.users.READ"], "/crm/v6/users", {"type": "AllUsers"}, True),
    (["ZohoCRM.users.ALL"], "/crm/v6/users", {"type": "AllUsers"}, True),
    (["ZohoCRM.modules.ALL"], "/crm/v6/users", {"type": "AllUsers"}, False),
    (["ZohoCRM.modules.ALL", "ZohoSearch.securesearch.READ"], "/crm/v6/Leads/actions/count", {}, True),
    (["ZohoCRM.modules.ALL"], "/crm/v6/Leads/actions/count", {}, False),
    (["ZohoSearch.securesearch.READ"], "/crm/v6/Leads/actions/count", {}, False),
    (["ZohoCRM.modules.leads.READ"], "/crm/v6/Leads/deleted", {"type": "all"}, True),
    (["ZohoCRM.bulk.read", "ZohoCRM.modules.ALL"], "/crm/bulk/v6/read/1", {}, None),
    (["ZohoCRM.modules.ALL"], "/crm/bulk/v6/read/1", {}, False),
]


@pytest.mark.parametrize(("scopes", "path", "params", "allowed"), CASES)
def test_scopes_per_endpoint(
    sim: RunningSimulator, scopes: list[str], path: str, params: dict[str, str], allowed: bool | None
) -> None:
    org = client_org(sim, scopes)
    resp = get(org, path, token(org), params)
    if allowed is False:
        assert resp.status_code == 401
        assert resp.json() == SCOPE_MISMATCH
    elif allowed:
        assert resp.status_code in (200, 204), resp.text
    else:  # allowed, but the bulk job id does not exist
        assert resp.status_code == 404 and resp.json()["code"] == "RESOURCE_NOT_FOUND"


def test_bearer_scheme_is_not_accepted(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    resp = get(
        sim.primary, "/crm/v6/Leads", None, {"fields": "Last_Name"}, {"Authorization": f"Bearer {tok}"}
    )
    assert resp.status_code == 401 and resp.json()["code"] == "AUTHENTICATION_FAILURE"
