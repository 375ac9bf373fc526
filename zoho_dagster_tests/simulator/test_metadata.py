"""Modules, fields, users, count and deleted records (docs/zoho-crm-api.md §3.2-§3.6)."""

from __future__ import annotations

from datetime import datetime, timezone

from zoho_dagster.simulator import RunningSimulator

from .helpers import RECORD_MODULES, error, get, token

MODULES = RECORD_MODULES


def test_settings_modules(sim: RunningSimulator) -> None:
    body = get(sim.primary, "/crm/v6/settings/modules", token(sim.primary)).json()
    rows = {m["api_name"]: m for m in body["modules"]}
    assert set(MODULES) <= set(rows)
    for m in rows.values():
        assert {
            "api_name",
            "module_name",
            "api_supported",
            "generated_type",
            "id",
            "plural_label",
            "singular_label",
            "visibility",
            "status",
            "viewable",
        } <= set(m)
    assert rows["Events"]["module_name"] == "Meetings" and rows["Events"]["singular_label"] == "Meeting"
    assert rows["Vehicles"]["generated_type"] == "custom"
    assert rows["Home"]["api_supported"] is False


def test_settings_fields(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    fields = get(sim.primary, "/crm/v6/settings/fields", tok, {"module": "Deals"}).json()["fields"]
    by = {f["api_name"]: f for f in fields}
    for f in fields:
        assert {
            "api_name",
            "data_type",
            "json_type",
            "length",
            "decimal_place",
            "field_label",
            "custom_field",
            "lookup",
            "pick_list_values",
            "read_only",
            "visible",
        } <= set(f)
    assert by["Account_Name"]["lookup"]["module"]["api_name"] == "Accounts"
    assert by["Owner"]["json_type"] == "jsonobject" and by["Amount"]["json_type"] == "double"
    assert "Qualification" in [p["display_value"] for p in by["Stage"]["pick_list_values"]]
    missing = get(sim.primary, "/crm/v6/settings/fields", tok)
    assert missing.status_code == 400 and error(missing)["code"] == "REQUIRED_PARAM_MISSING"


def test_users(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    body = get(sim.primary, "/crm/v6/users", tok, {"type": "AllUsers", "per_page": 5}).json()
    assert set(body) == {"users", "info"}
    assert body["info"] == {"per_page": 5, "count": 5, "page": 1, "more_records": True}
    user = body["users"][0]
    assert {"id", "full_name", "email", "time_zone", "status", "role", "profile"} <= set(user)
    last = get(sim.primary, "/crm/v6/users", tok, {"type": "AllUsers", "per_page": 5, "page": 3}).json()
    assert last["info"]["more_records"] is False
    all_users = get(sim.primary, "/crm/v6/users", tok, {"type": "AllUsers"}).json()["users"]
    assert len({u["time_zone"] for u in all_users}) >= 4


def test_count(sim: RunningSimulator) -> None:
    resp = get(sim.primary, "/crm/v6/Contacts/actions/count", token(sim.primary))
    assert resp.json() == {"count": len(sim.control.truth("Contacts")["data"])}


def test_count_with_a_modified_time_criterion(sim: RunningSimulator) -> None:
    """``criteria`` bounds the count (docs/zoho-crm-api.md §3.5); datetimes as in search criteria (§3.7)."""
    records = sim.control.truth("Contacts")["data"]
    moments = sorted(datetime.fromisoformat(r["Modified_Time"]).astimezone(timezone.utc) for r in records)
    since = moments[len(moments) // 3]
    criteria = f"(Modified_Time:greater_equal:{since.isoformat()})"
    resp = get(sim.primary, "/crm/v6/Contacts/actions/count", token(sim.primary), {"criteria": criteria})
    assert resp.json() == {"count": sum(1 for moment in moments if moment >= since)}


def test_count_refuses_a_criterion_it_cannot_apply(sim: RunningSimulator) -> None:
    params = {"criteria": "(Last_Name:equals:Boyle)"}
    resp = get(sim.primary, "/crm/v6/Contacts/actions/count", token(sim.primary), params)
    assert resp.status_code == 400 and error(resp)["code"] == "INVALID_QUERY"


def test_deleted_records(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    body = get(org, "/crm/v6/Leads/deleted", tok, {"type": "all"}).json()
    kinds = {d["type"] for d in body["data"]}
    assert kinds == {"recycle", "permanent"}
    for d in body["data"]:
        assert set(d) == {"deleted_by", "id", "display_name", "type", "created_by", "deleted_time"}
        if d["type"] == "permanent":
            assert d["display_name"] is None and d["deleted_by"] is None
    assert set(body["info"]) == {"per_page", "count", "page", "more_records"}
    recycle = get(org, "/crm/v6/Leads/deleted", tok, {"type": "recycle"}).json()["data"]
    assert {d["type"] for d in recycle} == {"recycle"}
    bad = get(org, "/crm/v6/Leads/deleted", tok, {"type": "bogus"})
    assert bad.status_code == 400 and error(bad)["code"] == "PATTERN_NOT_MATCHED"
    paged = get(org, "/crm/v6/Leads/deleted", tok, {"type": "all", "per_page": 2}).json()
    assert paged["info"]["count"] == 2 and paged["info"]["more_records"] is True


def test_deleted_since_and_204(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    rid = sim.control.truth("Deals")["data"][0]["id"]
    sim.control.advance_clock(3600)
    sim.control.delete("Deals", rid)
    tok = token(org)
    future = get(
        org, "/crm/v6/Deals/deleted", tok, {"type": "all"}, {"If-Modified-Since": "2100-01-01T00:00:00+00:00"}
    )
    assert future.status_code == 304
    truth_deleted = {d["id"] for d in sim.control.truth("Deals")["deleted"]}
    assert rid in truth_deleted
    small = sim.connection["orgs"][3]
    resp = get(small, "/crm/v6/Vendors/deleted", token(small), {"type": "permanent"})
    assert resp.status_code == 204 and resp.content == b""
