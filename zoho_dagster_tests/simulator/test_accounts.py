"""Accounts server conformance (docs/zoho-crm-api.md §1.2-§1.6)."""

from __future__ import annotations

from typing import Any

import requests

from zoho_dagster.simulator import RunningSimulator

from .helpers import INVALID_TOKEN, SESSION, get, grant, token

THROTTLE_BODY = {
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "error": "Access Denied",
    "status": "failure",
}


def _post_query(org: dict[str, Any], params: dict[str, str]) -> requests.Response:
    return SESSION.post(f"{org['accounts_url']}/oauth/v2/token", params=params, timeout=30)


def test_refresh_token_grant_shape(sim: RunningSimulator) -> None:
    resp = grant(sim.primary)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"access_token", "scope", "api_domain", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["api_domain"] == sim.primary["api_domain"]
    assert " " in body["scope"] and "," not in body["scope"]
    assert "ZohoCRM.modules.ALL" in body["scope"].split(" ")


def test_params_in_query_string(sim: RunningSimulator) -> None:
    org = sim.primary
    resp = _post_query(
        org,
        {
            "refresh_token": org["refresh_token"],
            "client_id": org["client_id"],
            "client_secret": org["client_secret"],
            "grant_type": "refresh_token",
        },
    )
    assert resp.status_code == 200 and "access_token" in resp.json()


def test_client_credentials_requires_soid(sim: RunningSimulator) -> None:
    org = sim.primary
    base = {
        "client_id": org["client_id"],
        "client_secret": org["client_secret"],
        "grant_type": "client_credentials",
        "scope": "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL",
    }
    missing = _post_query(org, base)
    assert missing.status_code == 200 and missing.json() == {"error": "missing_org_info"}
    ok = _post_query(org, {**base, "soid": org["soid"]})
    body = ok.json()
    assert ok.status_code == 200 and "refresh_token" not in body
    assert body["scope"] == "ZohoCRM.modules.ALL ZohoCRM.settings.ALL"
    assert body["api_domain"] == org["api_domain"]


def test_authorization_code_grant_one_time(sim: RunningSimulator) -> None:
    org = sim.primary
    code = sim.control.grant_code(org["client_id"])
    data = {
        "grant_type": "authorization_code",
        "client_id": org["client_id"],
        "client_secret": org["client_secret"],
        "redirect_uri": "http://localhost/cb",
        "code": code,
    }
    first = SESSION.post(f"{org['accounts_url']}/oauth/v2/token", data=data, timeout=30)
    body = first.json()
    assert first.status_code == 200
    assert set(body) == {"access_token", "refresh_token", "scope", "api_domain", "token_type", "expires_in"}
    again = SESSION.post(f"{org['accounts_url']}/oauth/v2/token", data=data, timeout=30)
    assert again.status_code == 200 and again.json() == {"error": "invalid_code"}
    # the new refresh token works
    assert grant({**org, "refresh_token": body["refresh_token"]}).json()["access_token"]


def test_failures_are_http_200_with_error(sim: RunningSimulator) -> None:
    org = sim.primary
    eu = sim.connection["orgs"][1]
    cases = [
        (grant({**org, "client_id": "1000.NOPE"}), {"error": "invalid_client"}),
        (
            grant({**eu, "accounts_url": org["accounts_url"]}),
            {"error": "invalid_client"},
        ),  # other DC's client
        (grant({**org, "client_secret": "wrong"}), {"error": "invalid_client_secret"}),
        (grant({**org, "refresh_token": "1000.bad.token"}), {"error": "invalid_code"}),
    ]
    for resp, expected in cases:
        assert resp.status_code == 200
        assert resp.json() == expected


def test_ten_tokens_per_ten_minutes(sim: RunningSimulator) -> None:
    org = sim.primary
    for _ in range(10):
        assert grant(org).status_code == 200
    throttled = grant(org)
    assert throttled.status_code == 400
    assert throttled.json() == THROTTLE_BODY
    sim.control.advance_clock(601)
    assert "access_token" in grant(org).json()


def test_token_grants_counted(sim: RunningSimulator) -> None:
    sim.control.reset_stats()
    for _ in range(3):
        grant(sim.primary)
    grant({**sim.primary, "client_secret": "x"})
    assert sim.control.stats()["token_grants"] == 3


def test_token_lifetime_default_and_expiry(sim: RunningSimulator) -> None:
    org = sim.primary
    tok = token(org)
    assert get(org, "/crm/v6/Leads", tok, {"fields": "Last_Name", "per_page": 1}).status_code == 200
    sim.control.advance_clock(3601)
    resp = get(org, "/crm/v6/Leads", tok, {"fields": "Last_Name", "per_page": 1})
    assert resp.status_code == 401
    assert resp.json() == INVALID_TOKEN


def test_token_lifetime_configurable() -> None:
    from zoho_dagster.simulator import run_simulator

    with run_simulator(records=50, token_lifetime=120) as short:
        body = grant(short.primary).json()
        assert body["expires_in"] == 120
        tok = body["access_token"]
        assert get(short.primary, "/crm/v6/Leads", tok, {"fields": "Last_Name"}).status_code == 200
        short.control.advance_clock(121)
        assert (
            get(short.primary, "/crm/v6/Leads", tok, {"fields": "Last_Name"}).json()["code"]
            == "INVALID_TOKEN"
        )


def test_revoked_refresh_token(sim: RunningSimulator) -> None:
    org = sim.primary
    creds = sim.control.add_client(["ZohoCRM.modules.ALL"])
    mine = {**org, **creds}
    tok = token(mine)
    resp = SESSION.post(
        f"{org['accounts_url']}/oauth/v2/token/revoke", data={"token": creds["refresh_token"]}, timeout=30
    )
    assert resp.json()["status"] == "success"
    assert grant(mine).json() == {"error": "invalid_code"}
    assert get(org, "/crm/v6/Leads", tok, {"fields": "Last_Name"}).json()["code"] == "INVALID_TOKEN"
