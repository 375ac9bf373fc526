"""Stage history, formula and rollup fields, type drift, org metadata, roles, profiles and currencies
(docs/zoho-crm-api.md §3.3, §3.9, §3.10), over real sockets."""

from __future__ import annotations

import time
from datetime import datetime

from zoho_dagster.simulator import RunningSimulator

from .helpers import client_org, error, get, token

HISTORY_FIELDS = (
    "Stage,Amount,Probability,Expected_Revenue,Closing_Date,Modified_Time,Modified_By,Duration_Days"
)
DAY = 86_400


def test_stage_history_ends_with_the_current_stage(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    deals = get(org, "/crm/v6/Deals", tok, {"fields": "Stage,Amount", "per_page": 25}).json()["data"]
    for deal in deals:
        resp = get(org, f"/crm/v6/Deals/{deal['id']}/Stage_History", tok, {"fields": HISTORY_FIELDS})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        rows = body["data"]
        assert 1 <= len(rows) <= 4 and body["info"]["more_records"] is False
        assert rows[0]["Stage"] == deal["Stage"]  # newest first: the deal's current stage
        assert rows[0]["Duration_Days"] is None
        times = [datetime.fromisoformat(r["Modified_Time"]) for r in rows]
        assert times == sorted(times, reverse=True)
        assert all(set(r["Modified_By"]) >= {"name", "id"} for r in rows)
        assert all(r["Amount"] == deal["Amount"] for r in rows)
    truth = sim.control.truth("Deals")["stage_history"]
    assert {r["_parent_id"] for r in truth} >= {d["id"] for d in deals}


def test_a_stage_change_adds_history_and_moves_the_deal(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    deal = get(org, "/crm/v6/Deals", tok, {"fields": "Stage,Modified_Time", "per_page": 1}).json()["data"][0]
    path = f"/crm/v6/Deals/{deal['id']}/Stage_History"
    before = get(org, path, tok, {"fields": "Stage"}).json()["data"]
    new_stage = "Closed Lost" if deal["Stage"] != "Closed Lost" else "Closed Won"
    sim.control.update("Deals", deal["id"], {"Stage": new_stage})
    after = get(org, path, tok, {"fields": "Stage,Duration_Days"}).json()["data"]
    assert len(after) == len(before) + 1
    assert after[0]["Stage"] == new_stage and [r["id"] for r in after[1:]] == [r["id"] for r in before]
    assert after[1]["Duration_Days"] is not None
    moved = get(org, f"/crm/v6/Deals/{deal['id']}", tok).json()["data"][0]
    assert moved["Modified_Time"] != deal["Modified_Time"]
    sim.control.update("Deals", deal["id"], {"Amount": 5.0})  # not a stage change: no new row
    assert len(get(org, path, tok, {"fields": "Stage"}).json()["data"]) == len(after)


def test_stage_history_errors(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    deal_id = get(org, "/crm/v6/Deals", tok, {"fields": "Stage", "per_page": 1}).json()["data"][0]["id"]
    missing = get(org, f"/crm/v6/Deals/{deal_id}/Stage_History", tok)
    assert missing.status_code == 400 and error(missing)["code"] == "REQUIRED_PARAM_MISSING"
    too_many = get(org, f"/crm/v6/Deals/{deal_id}/Stage_History", tok, {"fields": "Stage", "per_page": 201})
    assert too_many.status_code == 400
    other = get(org, f"/crm/v6/Leads/{deal_id}/Stage_History", tok, {"fields": "Stage"})
    assert other.status_code == 400 and error(other)["code"] == "INVALID_DATA"
    unknown = get(org, "/crm/v6/Deals/1/Stage_History", tok, {"fields": "Stage"})
    assert unknown.status_code == 400 and error(unknown)["code"] == "INVALID_DATA"
    assert (
        get(org, f"/crm/v6/Deals/{deal_id}/Stage_History", tok, {"fields": "Stage", "page": 2}).status_code
        == 204
    )


def test_formula_moves_with_the_clock_not_modified_time(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    fields = {
        f["api_name"]: f
        for f in get(org, "/crm/v6/settings/fields", tok, {"module": "Deals"}).json()["fields"]
    }
    days = fields["Days_Open__c"]
    assert days["data_type"] == "formula" and days["formula"]["return_type"] == "double"
    assert days["json_type"] == "double"
    params = {"fields": "Days_Open__c,Created_Time,Modified_Time", "per_page": 5}
    before = get(org, "/crm/v6/Deals", tok, params).json()["data"]
    for row in before:  # whole days since Created_Time (the simulator's formula, docs/zoho-crm-api.md §3.3)
        created = datetime.fromisoformat(row["Created_Time"]).timestamp()
        assert row["Days_Open__c"] in {
            float((time.time() - created) // DAY),
            float((time.time() - created) // DAY) - 1,
        }
    sim.control.advance_clock(3 * DAY)
    tok = token(org)  # the old access token expired with the clock
    after = {r["id"]: r for r in get(org, "/crm/v6/Deals", tok, params).json()["data"]}
    for row in before:
        assert after[row["id"]]["Days_Open__c"] - row["Days_Open__c"] in (3.0, 4.0)
        assert after[row["id"]]["Modified_Time"] == row["Modified_Time"]
    quotes = {
        f["api_name"]: f
        for f in get(org, "/crm/v6/settings/fields", tok, {"module": "Quotes"}).json()["fields"]
    }
    assert (
        quotes["Validity__c"]["formula"]["return_type"] == "text"
        and quotes["Validity__c"]["json_type"] == "string"
    )


def test_rollup_follows_the_deals(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    fields = {
        f["api_name"]: f
        for f in get(org, "/crm/v6/settings/fields", tok, {"module": "Accounts"}).json()["fields"]
    }
    assert fields["Total_Deal_Amount__c"]["data_type"] == "rollup_summary"
    assert fields["Total_Deal_Amount__c"]["rollup_summary"]["return_type"] == "currency"
    deals = sim.control.truth("Deals")["data"]
    sums: dict[str, float] = {}
    for deal in deals:
        if deal["Account_Name"] and deal["Amount"] is not None:
            key = deal["Account_Name"]["id"]
            sums[key] = sums.get(key, 0.0) + deal["Amount"]
    accounts = {r["id"]: r for r in sim.control.truth("Accounts")["data"]}
    for account_id, total in list(sums.items())[:200]:
        if account_id in accounts:
            assert accounts[account_id]["Total_Deal_Amount__c"] == round(total, 2)
    deal = next(d for d in deals if d["Account_Name"] and d["Account_Name"]["id"] in accounts)
    account_id = deal["Account_Name"]["id"]
    before = accounts[account_id]
    sim.control.update("Deals", deal["id"], {"Amount": deal["Amount"] + 1000.0})
    after = next(r for r in sim.control.truth("Accounts")["data"] if r["id"] == account_id)
    assert after["Total_Deal_Amount__c"] == round(before["Total_Deal_Amount__c"] + 1000.0, 2)
    assert after["Modified_Time"] == before["Modified_Time"]


def test_type_drift_changes_metadata_and_values(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    before = get(org, "/crm/v6/Deals", tok, {"fields": "Probability", "per_page": 5}).json()["data"]
    assert all(isinstance(r["Probability"], int) for r in before)
    sim.control.drift_field("Deals", "Probability", "text")
    fields = {
        f["api_name"]: f
        for f in get(org, "/crm/v6/settings/fields", tok, {"module": "Deals"}).json()["fields"]
    }
    assert (fields["Probability"]["data_type"], fields["Probability"]["json_type"]) == ("text", "string")
    after = {
        r["id"]: r
        for r in get(org, "/crm/v6/Deals", tok, {"fields": "Probability", "per_page": 5}).json()["data"]
    }
    for row in before:
        assert after[row["id"]]["Probability"] == str(row["Probability"])
    sim.control.reset()  # a reset forgets the drift (and the tokens)
    again = get(org, "/crm/v6/Deals", token(org), {"fields": "Probability", "per_page": 5}).json()["data"]
    assert again == before


def test_org_roles_profiles_currencies(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    row = get(org, "/crm/v6/org", tok).json()["org"][0]
    assert {"currency", "iso_code", "currency_symbol", "time_zone"} <= set(row) and row["mc_status"] is True
    roles = get(org, "/crm/v6/settings/roles", tok).json()["roles"]
    for role in roles:
        assert {"id", "name", "display_label", "reporting_to", "admin_user", "description"} <= set(role)
    users = get(org, "/crm/v6/users", tok, {"type": "AllUsers"}).json()["users"]
    assert {u["role"]["id"] for u in users} <= {r["id"] for r in roles}
    profiles = get(org, "/crm/v6/settings/profiles", tok).json()["profiles"]
    for profile in profiles:
        assert {
            "id",
            "name",
            "display_label",
            "default",
            "custom",
            "description",
            "created_time",
            "modified_time",
        } <= set(profile)
    assert {u["profile"]["id"] for u in users} <= {p["id"] for p in profiles}
    currencies = get(org, "/crm/v6/org/currencies", tok).json()["currencies"]
    assert [c["iso_code"] for c in currencies if c["is_base"]] == [row["iso_code"]]
    for currency in currencies:
        assert isinstance(currency["exchange_rate"], str) and float(currency["exchange_rate"]) > 0
        assert {"id", "name", "symbol", "is_active", "format"} <= set(currency)
    assert sim.control.truth("currencies")["data"] == currencies
    sim.control.set_org(mc_status=False)
    assert get(org, "/crm/v6/org", tok).json()["org"][0]["mc_status"] is False
    off = get(org, "/crm/v6/org/currencies", tok)
    assert off.status_code == 400 and error(off)["code"] == "FEATURE_NOT_ENABLED"


def test_settings_scopes(sim: RunningSimulator) -> None:
    roles_only = client_org(sim, ["ZohoCRM.settings.roles.READ"])
    tok = token(roles_only)
    assert get(roles_only, "/crm/v6/settings/roles", tok).status_code == 200
    refused = get(roles_only, "/crm/v6/settings/profiles", tok)
    assert refused.status_code == 401 and error(refused)["code"] == "OAUTH_SCOPE_MISMATCH"
    assert get(roles_only, "/crm/v6/org/currencies", tok).status_code == 401
    settings = client_org(sim, ["ZohoCRM.settings.READ"])
    tok = token(settings)
    for path in ("/crm/v6/settings/roles", "/crm/v6/settings/profiles", "/crm/v6/org/currencies"):
        assert get(settings, path, tok).status_code == 200, path
