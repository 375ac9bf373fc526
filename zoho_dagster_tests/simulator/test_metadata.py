"""Modules, fields, users, count, deleted records (docs/zoho-crm-api.md §3.2-§3.6) and tags (§4.1)."""

from __future__ import annotations

from datetime import datetime, timezone

from zoho_dagster.simulator import RunningSimulator

from .helpers import RECORD_MODULES, client_org, error, get, shown_by_default, token

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
    """The records the list API shows by default (strict reading, docs/zoho-crm-api.md §10)."""
    resp = get(sim.primary, "/crm/v6/Contacts/actions/count", token(sim.primary))
    assert resp.json() == {"count": len(shown_by_default(sim.control.truth("Contacts")["data"]))}


def test_count_with_a_modified_time_criterion(sim: RunningSimulator) -> None:
    """``criteria`` bounds the count (docs/zoho-crm-api.md §3.5); datetimes as in search criteria (§3.7)."""
    records = shown_by_default(sim.control.truth("Contacts")["data"])
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


def test_settings_tags(sim: RunningSimulator) -> None:
    """``/settings/tags?module=`` (docs/zoho-crm-api.md §4.1): every tag records carry, names unique per
    module, each record's tag ``{"name", "id"}`` as listed; ``color_code`` only here, sometimes null."""
    org, tok = sim.primary, token(sim.primary)
    for module in ("Leads", "Contacts", "Deals", "Vehicles"):
        body = get(org, "/crm/v6/settings/tags", tok, {"module": module}).json()
        assert set(body) == {"tags", "info"}
        assert body["info"] == {"count": len(body["tags"]), "allowed_count": 100}  # Enterprise
        for tag in body["tags"]:
            assert set(tag) == {
                "created_time",
                "modified_time",
                "name",
                "modified_by",
                "id",
                "created_by",
                "color_code",
            }
            assert set(tag["created_by"]) == {"name", "id"}
        names = [tag["name"] for tag in body["tags"]]
        assert len(names) == len(set(names)) >= 2
        colours = [tag["color_code"] for tag in body["tags"]]
        assert None in colours and any(colour and colour.startswith("#") for colour in colours)
        listed = {tag["id"]: {"name": tag["name"], "id": tag["id"]} for tag in body["tags"]}
        carried = [tag for record in sim.control.truth(module)["data"] for tag in record["Tag"]]
        assert carried and all(list(tag) == ["name", "id"] and tag == listed[tag["id"]] for tag in carried)


def test_settings_tags_list_written_tags_and_refuse_what_zoho_refuses(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    path = "/crm/v6/settings/tags"
    known = get(org, path, tok, {"module": "Deals"}).json()["tags"]
    fresh = {"name": "Board Review", "id": str(int(known[0]["id"]) + 1_000_000)}
    deal = sim.control.truth("Deals")["data"][0]["id"]
    sim.control.update("Deals", deal, {"Tag": [fresh, {"name": known[0]["name"], "id": known[0]["id"]}]})
    after = get(org, path, tok, {"module": "Deals"}).json()["tags"]
    assert [tag["id"] for tag in after] == [*(tag["id"] for tag in known), fresh["id"]]
    assert after[-1]["name"] == "Board Review" and after[-1]["color_code"] is None
    assert fresh["id"] not in {t["id"] for t in get(org, path, tok, {"module": "Leads"}).json()["tags"]}
    missing = get(org, path, tok)
    assert missing.status_code == 400 and error(missing)["code"] == "REQUIRED_PARAM_MISSING"
    for module, message in (
        ("Nope", "the module name given seems to be invalid"),
        ("Notes", "the given module is not supported for this api"),
    ):
        refused = get(org, path, tok, {"module": module})
        assert refused.status_code == 400 and error(refused) == {
            "code": "INVALID_MODULE",
            "details": {},
            "message": message,
            "status": "error",
        }
    assert get(org, path, tok, {"module": "Leads", "my_tags": "maybe"}).status_code == 400


def test_settings_tags_need_a_tags_scope(sim: RunningSimulator) -> None:
    """``ZohoCRM.settings.ALL`` or ``ZohoCRM.settings.tags.{ALL,READ}``; field and module scopes do not do."""
    for scopes, allowed in (
        (["ZohoCRM.settings.tags.READ"], True),
        (["ZohoCRM.settings.tags.ALL"], True),
        (["ZohoCRM.settings.ALL"], True),
        (["ZohoCRM.settings.READ", "ZohoCRM.settings.fields.READ", "ZohoCRM.modules.ALL"], False),
    ):
        org = client_org(sim, scopes)
        resp = get(org, "/crm/v6/settings/tags", token(org), {"module": "Leads"})
        if allowed:
            assert resp.status_code == 200, scopes
        else:
            assert resp.status_code == 401 and error(resp)["code"] == "OAUTH_SCOPE_MISMATCH"
